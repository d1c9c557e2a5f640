-- The event log where CVAT reads it, made like 0001's (same columns, engine and key: a redelivered
-- message collapses into one row); 0003 adds the column CVAT's schema has beyond 0001's.
CREATE TABLE IF NOT EXISTS {database}.events AS {home}.events

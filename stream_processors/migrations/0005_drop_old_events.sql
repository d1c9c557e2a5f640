-- The old table's rows are in {database}.events since 0004.
DROP TABLE IF EXISTS {home}.events

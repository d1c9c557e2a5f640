-- Copy the events of an installation made before 0002 into the new table (a fresh one has none).
-- Run twice (interrupted before its record), it copies every row again with the same key, which
-- the table collapses. 0005 drops the old table only once this is recorded.
INSERT INTO {database}.events
(
    scope, obj_name, obj_id, obj_val, source, timestamp, count, duration, project_id, task_id,
    job_id, user_id, user_name, user_email, org_id, org_slug, payload, request_id, event_seq,
    received_at
)
SELECT
    scope, obj_name, obj_id, obj_val, source, timestamp, count, duration, project_id, task_id,
    job_id, user_id, user_name, user_email, org_id, org_slug, payload, request_id, event_seq,
    received_at
FROM {home}.events

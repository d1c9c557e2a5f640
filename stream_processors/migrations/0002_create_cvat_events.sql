-- The event log where CVAT reads it: CVAT's columns first, with types CVAT's export and dashboards
-- read (count is UInt32 where CVAT has UInt16: the events API accepts counts up to 2**32 - 1),
-- then the pipeline's own. Keyed as in 0001: a redelivered message collapses into one row.
CREATE TABLE IF NOT EXISTS {database}.events
(
    `scope` String,
    `obj_name` Nullable(String),
    `obj_id` Nullable(UInt64),
    `obj_val` Nullable(String),
    `source` String,
    `timestamp` DateTime64(3, 'UTC'),
    `count` Nullable(UInt32),
    `duration` UInt32 DEFAULT 0,
    `project_id` Nullable(UInt64),
    `task_id` Nullable(UInt64),
    `job_id` Nullable(UInt64),
    `user_id` Nullable(UInt64),
    `user_name` Nullable(String),
    `user_email` Nullable(String),
    `org_id` Nullable(UInt64),
    `org_slug` Nullable(String),
    `payload` Nullable(String),
    `access_token_id` Nullable(UInt64),
    `request_id` UUID,
    `event_seq` UInt32,
    `received_at` DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (timestamp, request_id, event_seq)

-- The event log in the DSN's database ({home}) until 0004 copies it over and 0005 drops it.
-- ReplacingMergeTree keyed by (timestamp, request_id, event_seq): a message Kafka redelivers
-- produces rows with the same key, which merges collapse and FINAL reads hide. The text of an
-- applied migration may change only where its effect does not: {home} names the database it
-- always ran in.
CREATE TABLE IF NOT EXISTS {home}.events
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
    `request_id` UUID,
    `event_seq` UInt32,
    `received_at` DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (timestamp, request_id, event_seq)

-- CVAT's access_token_id (the API token a server event was made with), after CVAT's columns as in
-- CVAT's own schema. The events table then has every column CVAT's export reads (EXPORT_COLUMNS).
ALTER TABLE {database}.events ADD COLUMN IF NOT EXISTS `access_token_id` Nullable(UInt64) AFTER payload

-- An SMS that failed for a reason that passes (the network, a Twilio 5xx or rate limit) is
-- sent again by the recurring outbound_retry job (services/notify.py), with a growing pause,
-- for a day at most. retry_at is set only while such a message waits; NULL otherwise.
ALTER TABLE outbound_messages ADD COLUMN retries integer NOT NULL DEFAULT 0;
ALTER TABLE outbound_messages ADD COLUMN retry_at timestamptz;
CREATE INDEX outbound_messages_retry ON outbound_messages (retry_at) WHERE retry_at IS NOT NULL;

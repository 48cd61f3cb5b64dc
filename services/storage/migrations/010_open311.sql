-- Open311 GeoReport v2 (channels/open311.py): the API keys that may file requests, and what a
-- request filed through the API carries besides its work order.

-- An API key is shown once when it is made (`hotline apikeys add NAME`); only its SHA-256 is
-- kept. One active key per name; a revoked key stays for the record.
CREATE TABLE open311_api_keys (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX open311_api_keys_active_name ON open311_api_keys (name) WHERE revoked_at IS NULL;

-- One row per work order filed through the API: its service (category), the token a batch
-- client turns into the request number, and the fields of the POST that the order has no
-- column for.
CREATE TABLE open311_requests (
    work_order_id bigint PRIMARY KEY REFERENCES work_orders(id),
    api_key_id    bigint NOT NULL REFERENCES open311_api_keys(id),
    service_code  text NOT NULL,
    token         text NOT NULL UNIQUE,
    attributes    jsonb NOT NULL DEFAULT '{}'::jsonb,
    lat           double precision,
    long          double precision,
    address_id    text,
    email         text,
    device_id     text,
    account_id    text,
    first_name    text,
    last_name     text,
    media_url     text,
    created_at    timestamptz NOT NULL
);
CREATE INDEX open311_requests_created ON open311_requests (created_at);
CREATE INDEX open311_requests_service ON open311_requests (service_code, created_at);

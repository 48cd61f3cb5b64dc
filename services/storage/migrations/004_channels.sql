-- Phone, SMS and WeChat: outbound messages with their status, SMS consent, calls with their
-- turns and provider callbacks, and cached provider API tokens.

-- Every message the centre sends on its own initiative (notifications, pushed replies,
-- outbound calls).
-- One row per message handed to the provider; a long text is several rows.
CREATE TABLE outbound_messages (
    id              bigserial PRIMARY KEY,
    channel         text NOT NULL CHECK (channel IN ('sms', 'wechat', 'voice')),
    -- a canonical phone number (see services/phone_numbers.py) or a WeChat openid
    recipient       text NOT NULL,
    -- the text; for an outbound call, the URL of its TwiML
    body            text NOT NULL,
    -- why it is sent: request_number, progress, revisit, reply, ...
    purpose         text NOT NULL,
    part            integer NOT NULL DEFAULT 1,
    parts           integer NOT NULL DEFAULT 1,
    segments        integer,
    status          text NOT NULL CHECK (status IN (
                        'pending', 'sent', 'delivered', 'undelivered', 'failed',
                        'opted_out', 'not_configured')),
    provider_id     text,
    provider_status text,
    error           text,
    -- a caller-chosen key: the same key never sends twice
    idempotency_key text UNIQUE,
    conversation_id bigint REFERENCES conversations(id),
    work_order_id   bigint REFERENCES work_orders(id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX outbound_messages_provider_id ON outbound_messages (channel, provider_id)
    WHERE provider_id IS NOT NULL;
CREATE INDEX outbound_messages_recipient ON outbound_messages (channel, recipient, created_at);
CREATE INDEX outbound_messages_work_order ON outbound_messages (work_order_id)
    WHERE work_order_id IS NOT NULL;

-- 退订/STOP and 订阅/START as the citizen sent them; the latest event per phone decides.
CREATE TABLE sms_consent_events (
    id          bigserial PRIMARY KEY,
    phone       text NOT NULL,
    action      text NOT NULL CHECK (action IN ('opt_out', 'opt_in')),
    keyword     text NOT NULL,
    -- the inbound MessageSid: a resent webhook is recorded once
    message_sid text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_consent_events_phone ON sms_consent_events (phone, id);

-- One row per phone call; the conversation is the voice channel's session for this CallSid.
CREATE TABLE voice_calls (
    call_sid           text PRIMARY KEY,
    conversation_id    bigint REFERENCES conversations(id),
    from_number        text,
    to_number          text,
    -- the caller's number in canonical form, when it is a real phone number
    caller_phone       text,
    -- ivr: the bot is talking; transferred: to an agent or an emergency number; ended
    state              text NOT NULL DEFAULT 'ivr' CHECK (state IN ('ivr', 'transferred', 'ended')),
    call_status        text,
    last_turn          integer NOT NULL DEFAULT 0,
    -- consecutive turns without speech or keys
    silences           integer NOT NULL DEFAULT 0,
    -- what the caller heard last, repeated once when they say nothing
    last_prompt        text,
    transferred_to     text,
    duration_seconds   integer,
    recording_sid      text,
    recording_url      text,
    recording_duration integer,
    started_at         timestamptz NOT NULL DEFAULT now(),
    ended_at           timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_calls_conversation ON voice_calls (conversation_id);

-- Each webhook of a call carries its turn number in its URL; the answer is kept, so a
-- retried webhook gets the same TwiML and nothing is done twice.
CREATE TABLE voice_turns (
    call_sid   text NOT NULL REFERENCES voice_calls(call_sid),
    turn       integer NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('greeting', 'speech', 'digits', 'silence', 'after_transfer')),
    heard      text,
    confidence real,
    message_id bigint REFERENCES messages(id),
    twiml      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_sid, turn)
);

-- Call-status and recording callbacks, and transfers, as Twilio reported them.
CREATE TABLE voice_call_events (
    id              bigserial PRIMARY KEY,
    call_sid        text NOT NULL,
    conversation_id bigint REFERENCES conversations(id),
    kind            text NOT NULL CHECK (kind IN ('status', 'recording', 'transfer')),
    dedupe_key      text NOT NULL UNIQUE,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_call_events_call ON voice_call_events (call_sid, id);

-- Provider access tokens shared by every process (a WeChat token fetch invalidates the old
-- one after a few minutes, so processes must not each keep their own).
CREATE TABLE api_tokens (
    name       text PRIMARY KEY,
    token      text NOT NULL,
    expires_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Core tables: units, citizens, conversations, messages, work orders and their events.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE units (
    code          text PRIMARY KEY,
    name          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('department', 'territorial', 'enterprise', 'organization')),
    duties        text[] NOT NULL DEFAULT '{}',
    contact_phone text,
    active        boolean NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE citizens (
    id         bigserial PRIMARY KEY,
    phone      text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- How a channel knows a citizen: a web session, a WeChat openid, a phone number.
CREATE TABLE citizen_identities (
    channel     text NOT NULL,
    external_id text NOT NULL,
    citizen_id  bigint NOT NULL REFERENCES citizens(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, external_id)
);

CREATE TABLE conversations (
    id             bigserial PRIMARY KEY,
    channel        text NOT NULL,
    session_key    text NOT NULL,
    citizen_id     bigint NOT NULL REFERENCES citizens(id),
    -- who answers: the bot, nobody yet (waiting for an agent), an agent; closed ones are history
    mode           text NOT NULL DEFAULT 'bot' CHECK (mode IN ('bot', 'waiting_agent', 'agent', 'closed')),
    handoff_reason text,
    dialogue       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX conversations_open_session ON conversations (channel, session_key) WHERE mode <> 'closed';
CREATE INDEX conversations_waiting ON conversations (updated_at) WHERE mode = 'waiting_agent';

CREATE TABLE messages (
    id                bigserial PRIMARY KEY,
    conversation_id   bigint NOT NULL REFERENCES conversations(id),
    direction         text NOT NULL CHECK (direction IN ('in', 'out')),
    author            text NOT NULL DEFAULT 'citizen',
    client_message_id text,
    reply_to          bigint REFERENCES messages(id),
    text              text NOT NULL,
    nlu               jsonb,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_message_id)
    WHERE direction = 'in' AND client_message_id IS NOT NULL;
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;

CREATE TABLE request_number_counters (
    day  date PRIMARY KEY,
    last integer NOT NULL
);

CREATE TABLE work_orders (
    id              bigserial PRIMARY KEY,
    request_number  text NOT NULL UNIQUE,
    citizen_id      bigint NOT NULL REFERENCES citizens(id),
    conversation_id bigint REFERENCES conversations(id),
    -- the inbound message that filed it: a resent message finds its order again
    source_message_id bigint UNIQUE REFERENCES messages(id),
    channel         text NOT NULL,
    request_type    text NOT NULL CHECK (request_type IN ('consult', 'complain', 'seek_help', 'suggest', 'report', 'praise')),
    content         text NOT NULL,
    location        text,
    address         jsonb,
    contact_phone   text,
    lead_unit       text REFERENCES units(code),
    suggestions     jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- a projection of work_order_events, written only together with an event
    status          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_orders_unit_status ON work_orders (lead_unit, status);
CREATE INDEX work_orders_citizen ON work_orders (citizen_id, created_at);

CREATE TABLE work_order_events (
    id            bigserial PRIMARY KEY,
    work_order_id bigint NOT NULL REFERENCES work_orders(id),
    kind          text NOT NULL,
    actor         text NOT NULL,
    actor_role    text NOT NULL,
    unit          text REFERENCES units(code),
    note          text,
    data          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status_after  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_order_events_order ON work_order_events (work_order_id, id);

-- The history is append-only: no update, no delete.
CREATE FUNCTION forbid_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'work_order_events is append-only';
END $$;
CREATE TRIGGER work_order_events_append_only
    BEFORE UPDATE OR DELETE ON work_order_events
    FOR EACH ROW EXECUTE FUNCTION forbid_event_change();

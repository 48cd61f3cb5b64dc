-- The agent workspace: live pushes, order embeddings for similar-case search, reply
-- templates, who has a conversation, and how agents rated the suggestions.

ALTER TABLE conversations ADD COLUMN agent_user_id bigint REFERENCES users(id);

-- Bot conversations that need a person although nobody asked: flagged by the message reading.
CREATE TABLE agent_flags (
    conversation_id bigint NOT NULL REFERENCES conversations(id),
    message_id      bigint NOT NULL REFERENCES messages(id),
    reason          text NOT NULL CHECK (reason IN ('emergency', 'angry')),
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, reason)
);

-- Pushes go out through NOTIFY from triggers, so they are sent in the same transaction as
-- the change (and only if it commits), from whatever process made it.
CREATE FUNCTION agent_notify_conversation() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.mode IS DISTINCT FROM OLD.mode
       OR NEW.agent_user_id IS DISTINCT FROM OLD.agent_user_id THEN
        PERFORM pg_notify('agent_events', json_build_object(
            'kind', 'conversation', 'conversation_id', NEW.id, 'mode', NEW.mode)::text);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER conversations_agent_notify AFTER INSERT OR UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION agent_notify_conversation();

-- Messages are pushed when written and again when the NLU reading is added (an emergency
-- or an angry citizen puts a bot conversation on the queue).
CREATE FUNCTION agent_notify_message() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.direction = 'in' AND NEW.nlu IS NOT NULL THEN
        IF jsonb_typeof(NEW.nlu -> 'emergency') = 'object' THEN
            INSERT INTO agent_flags VALUES (NEW.conversation_id, NEW.id, 'emergency', NEW.created_at)
                ON CONFLICT DO NOTHING;
        END IF;
        -- words of anger (the NLU has no sentiment): better one card too many than none
        IF NEW.text ~ '(气死|太差劲|垃圾|忍无可忍|什么破|骂人|愤怒|火大|受够了|不像话|[!！]{2,})' THEN
            INSERT INTO agent_flags VALUES (NEW.conversation_id, NEW.id, 'angry', NEW.created_at)
                ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.nlu IS DISTINCT FROM OLD.nlu THEN
        PERFORM pg_notify('agent_events', json_build_object(
            'kind', 'message', 'conversation_id', NEW.conversation_id, 'message_id', NEW.id,
            'direction', NEW.direction, 'author', NEW.author)::text);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER messages_agent_notify AFTER INSERT OR UPDATE OF nlu ON messages
    FOR EACH ROW EXECUTE FUNCTION agent_notify_message();

-- e5 vectors of resolved orders (what was asked plus what was done), for similar cases.
CREATE TABLE work_order_embeddings (
    work_order_id bigint PRIMARY KEY REFERENCES work_orders(id),
    embedding     vector(384) NOT NULL,
    result        text,
    indexed_at    timestamptz NOT NULL
);
CREATE INDEX work_order_embeddings_hnsw ON work_order_embeddings
    USING hnsw (embedding vector_cosine_ops);

CREATE TABLE reply_templates (
    id           bigserial PRIMARY KEY,
    title        text NOT NULL,
    body         text NOT NULL,
    request_type text,
    keywords     text[] NOT NULL DEFAULT '{}',
    active       boolean NOT NULL DEFAULT true
);

INSERT INTO reply_templates (title, body, request_type, keywords) VALUES
 ('受理确认', '您好，您反映的问题我们已经记录，将尽快转交相关部门办理，请保持电话畅通。', NULL, '{}'),
 ('安抚致歉', '非常理解您的心情，给您带来不便深表歉意，我们会督促相关部门尽快处理。', 'complain', '{投诉,生气,太差,没人管,多次}'),
 ('紧急情况', '如遇火灾请立即拨打119，医疗急救拨打120，治安警情拨打110。请先确保人身安全。', NULL, '{着火,火灾,救命,受伤,报警,煤气}'),
 ('补充地址', '为便于部门上门核实，请告诉我们具体地址（区、街道、小区或道路门牌）。', NULL, '{}'),
 ('办理进度', '您可以提供诉求编号，我们为您查询办理进度。', NULL, '{进度,编号,查询}');

CREATE TABLE agent_suggestion_feedback (
    id              bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations(id),
    user_id         bigint NOT NULL REFERENCES users(id),
    source          text NOT NULL CHECK (source IN ('kb', 'similar_order', 'template')),
    ref             text NOT NULL,
    rank            integer NOT NULL,
    used            boolean NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX agent_suggestion_feedback_time ON agent_suggestion_feedback (created_at);

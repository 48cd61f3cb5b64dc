-- Revisits (回访): after each resolution the citizen is asked whether the problem is solved.
-- One row per resolution (round); the order's own history records the outcome as an event.
CREATE TABLE revisits (
    id                bigserial PRIMARY KEY,
    work_order_id     bigint NOT NULL REFERENCES work_orders (id),
    round             integer NOT NULL,
    -- how the citizen is asked first: called, texted, or a WeChat message (SMS as fallback)
    channel           text NOT NULL CHECK (channel IN ('voice', 'sms', 'wechat', 'none')),
    phone             text,
    openid            text,
    status            text NOT NULL DEFAULT 'scheduled'
                      CHECK (status IN ('scheduled', 'calling', 'awaiting_reply', 'done')),
    call_attempts     integer NOT NULL DEFAULT 0,
    max_call_attempts integer NOT NULL,
    call_sid          text,
    sms_sent          boolean NOT NULL DEFAULT false,
    rating            text CHECK (rating IN ('satisfied', 'basically_satisfied', 'dissatisfied')),
    outcome           text CHECK (outcome IN ('satisfied', 'basically_satisfied', 'dissatisfied', 'no_answer')),
    comment           text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    UNIQUE (work_order_id, round)
);
CREATE INDEX revisits_awaiting_phone ON revisits (phone) WHERE status = 'awaiting_reply';
CREATE INDEX revisits_awaiting_openid ON revisits (openid) WHERE status = 'awaiting_reply';

-- Every call or text of a revisit and what became of it (busy, no-answer, machine, ...).
CREATE TABLE revisit_attempts (
    id          bigserial PRIMARY KEY,
    revisit_id  bigint NOT NULL REFERENCES revisits (id),
    attempt     integer NOT NULL,
    channel     text NOT NULL,
    call_sid    text,
    result      text,
    answered_by text,
    created_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX revisit_attempts_revisit ON revisit_attempts (revisit_id);

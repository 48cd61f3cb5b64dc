-- Dispatch, time limits, supervision lights, the durable scheduler, staff accounts.

-- Staff accounts and their bearer-token sessions (only a hash of each token is stored).
CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (length(username) BETWEEN 2 AND 64),
    display_name    text,
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('agent', 'unit_handler', 'supervisor', 'knowledge_editor', 'admin')),
    unit_code       text REFERENCES units(code),
    active          boolean NOT NULL DEFAULT true,
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- a unit handler belongs to exactly one unit; nobody else belongs to one
    CHECK ((role = 'unit_handler') = (unit_code IS NOT NULL))
);

CREATE TABLE user_sessions (
    token_hash  text PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);

-- Days an admin enters into the working-day calendar: holidays and adjusted working days for
-- years the chinesecalendar package does not know yet, or corrections of years it knows.
CREATE TABLE calendar_days (
    day        date PRIMARY KEY,
    workday    boolean NOT NULL,
    name       text NOT NULL DEFAULT '',
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The clocks of an order: each yellow instant and deadline is stored when the event that
-- starts the clock happens, so the light scan is a set of index range scans
-- (`deadline > last scan AND deadline <= now`) over partial indexes that hold only the orders
-- whose clock is running, never a computation per order.
-- clock_seq counts the restarts (dispatch, reassignment, arbitration, return, reopening): a
-- light is raised once per clock.
ALTER TABLE work_orders
    ADD COLUMN clock_seq           integer NOT NULL DEFAULT 0,
    ADD COLUMN dispatch_clock_at   timestamptz,
    ADD COLUMN unit_clock_at       timestamptz,
    ADD COLUMN dispatch_yellow_at  timestamptz,
    ADD COLUMN dispatch_due_at     timestamptz,
    ADD COLUMN sign_for_yellow_at  timestamptz,
    ADD COLUMN sign_for_due_at     timestamptz,
    ADD COLUMN contact_yellow_at   timestamptz,
    ADD COLUMN contact_due_at      timestamptz,
    ADD COLUMN handling_yellow_at  timestamptz,
    ADD COLUMN handling_due_at     timestamptz,
    ADD COLUMN return_count        integer NOT NULL DEFAULT 0,
    ADD COLUMN dissatisfied_count  integer NOT NULL DEFAULT 0,
    -- repeat reports: the first order about the same problem, and how many repeats it has
    ADD COLUMN place_key           text,
    ADD COLUMN repeat_of           bigint REFERENCES work_orders(id),
    ADD COLUMN repeat_count        integer NOT NULL DEFAULT 0,
    ADD COLUMN escalated_at        timestamptz;

-- one partial index per threshold, over the statuses in which its clock runs
-- (services/workorder_states.CLOCK_POINTS; tests check the two agree)
CREATE INDEX work_orders_dispatch_yellow ON work_orders (dispatch_yellow_at) WHERE status IN ('awaiting_dispatch', 'returned');
CREATE INDEX work_orders_dispatch_due ON work_orders (dispatch_due_at) WHERE status IN ('awaiting_dispatch', 'returned');
CREATE INDEX work_orders_sign_for_yellow ON work_orders (sign_for_yellow_at) WHERE status IN ('dispatched');
CREATE INDEX work_orders_sign_for_due ON work_orders (sign_for_due_at) WHERE status IN ('dispatched');
CREATE INDEX work_orders_contact_yellow ON work_orders (contact_yellow_at) WHERE status IN ('dispatched', 'signed');
CREATE INDEX work_orders_contact_due ON work_orders (contact_due_at) WHERE status IN ('dispatched', 'signed');
CREATE INDEX work_orders_handling_yellow ON work_orders (handling_yellow_at) WHERE status IN ('dispatched', 'signed', 'contacted');
CREATE INDEX work_orders_handling_due ON work_orders (handling_due_at) WHERE status IN ('dispatched', 'signed', 'contacted');
CREATE INDEX work_orders_dispatch_queue ON work_orders (created_at) WHERE status IN ('awaiting_dispatch', 'returned');
CREATE INDEX work_orders_arbitration ON work_orders (updated_at) WHERE status = 'arbitration';
CREATE INDEX work_orders_place ON work_orders (place_key, created_at) WHERE place_key IS NOT NULL;
CREATE INDEX work_orders_repeat_of ON work_orders (repeat_of) WHERE repeat_of IS NOT NULL;
CREATE INDEX work_orders_escalated ON work_orders (escalated_at) WHERE escalated_at IS NOT NULL;
CREATE INDEX work_order_events_cycles ON work_order_events (created_at)
    WHERE kind IN ('dispatched', 'reassigned', 'arbitrated');

-- Assisting units (协办) beside the lead unit (主办).
CREATE TABLE work_order_assists (
    work_order_id bigint NOT NULL REFERENCES work_orders(id),
    unit_code     text NOT NULL REFERENCES units(code),
    added_by      text NOT NULL,
    added_at      timestamptz NOT NULL,
    PRIMARY KEY (work_order_id, unit_code)
);
CREATE INDEX work_order_assists_unit ON work_order_assists (unit_code);

-- Arbitration decisions, kept as precedent for routing similar orders later.
CREATE TABLE dispatch_precedents (
    id             bigserial PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES work_orders(id),
    text           text NOT NULL,
    unit_code      text NOT NULL REFERENCES units(code),
    rejected_units text[] NOT NULL DEFAULT '{}',
    reason         text NOT NULL,
    decided_by     text NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL
);

-- The five supervision points (and the centre's own dispatch limit), yellow and red.
CREATE TABLE supervision_lights (
    id            bigserial PRIMARY KEY,
    work_order_id bigint NOT NULL REFERENCES work_orders(id),
    point         text NOT NULL CHECK (point IN ('dispatch', 'sign_for', 'contact', 'handling', 'returned', 'dissatisfied')),
    color         text NOT NULL CHECK (color IN ('yellow', 'red')),
    cycle         integer NOT NULL,
    unit_code     text REFERENCES units(code),
    due_at        timestamptz,
    raised_at     timestamptz NOT NULL,
    notified_at   timestamptz,
    notify_result text,
    -- each light once per clock: concurrent scans and retries cannot raise it twice
    UNIQUE (work_order_id, point, color, cycle)
);
CREATE INDEX supervision_lights_unit ON supervision_lights (unit_code, point, color);
CREATE INDEX supervision_lights_raised ON supervision_lights (raised_at);

-- How far the light scan has got: every threshold up to `at` has been looked at.
CREATE TABLE scan_watermarks (
    name text PRIMARY KEY,
    at   timestamptz NOT NULL
);

-- The durable scheduler. A job is claimed with FOR UPDATE SKIP LOCKED under a lease; a job
-- whose lease has expired (its process died) is claimed again by another process.
CREATE TABLE scheduler_jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    dedupe_key   text UNIQUE,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    run_at       timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 8,
    locked_by    text,
    lease_until  timestamptz,
    done_at      timestamptz,
    failed_at    timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scheduler_jobs_ready ON scheduler_jobs (run_at) WHERE done_at IS NULL AND failed_at IS NULL;

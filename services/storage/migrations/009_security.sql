-- Issue 16: login backoff instead of the account lock, and the audit log of staff reads.

-- Wrong passwords per (user name, client address), known user or not: the backoff after a few
-- of them delays only that address, so nobody can lock an account out from elsewhere.
CREATE TABLE login_failures (
    username       text NOT NULL,
    address        text NOT NULL,
    failures       integer NOT NULL,
    last_failed_at timestamptz NOT NULL,
    retry_at       timestamptz,
    PRIMARY KEY (username, address)
);
CREATE INDEX login_failures_last ON login_failures (last_failed_at);

-- The hard lock it replaces (five wrong passwords locked the account for everyone).
ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN locked_until;

-- Every staff read of a work order or a conversation: who, when, what.
CREATE TABLE staff_reads (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL,
    user_id  bigint NOT NULL REFERENCES users(id),
    username text NOT NULL,
    role     text NOT NULL,
    -- one order or conversation; a list, with its filter as the object
    kind     text NOT NULL CHECK (kind IN ('order', 'conversation', 'order_list', 'conversation_list')),
    object   text NOT NULL,
    route    text NOT NULL
);
CREATE INDEX staff_reads_object ON staff_reads (kind, object, at);
CREATE INDEX staff_reads_user ON staff_reads (user_id, at);
CREATE INDEX staff_reads_at ON staff_reads (at);

CREATE FUNCTION forbid_staff_read_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'staff_reads is append-only';
END $$;
CREATE TRIGGER staff_reads_append_only
    BEFORE UPDATE OR DELETE ON staff_reads
    FOR EACH ROW EXECUTE FUNCTION forbid_staff_read_change();

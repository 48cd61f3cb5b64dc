-- Knowledge base, second step: editorial workflow, who changed what, embeddings per model,
-- calibration stored with the index, feedback with context, questions the base could not answer.

ALTER TABLE kb_entries
    ADD COLUMN created_by text NOT NULL DEFAULT 'system',
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN published_at timestamptz;
CREATE INDEX kb_entries_status ON kb_entries (status, unit);

-- Which fields a version changed compared with the one before (empty for the first).
ALTER TABLE kb_entry_versions ADD COLUMN changed_fields text[] NOT NULL DEFAULT '{}';

-- Versions are the audit trail: never rewritten.
CREATE FUNCTION kb_forbid_version_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kb_entry_versions is append-only';
END $$;
CREATE TRIGGER kb_entry_versions_append_only
    BEFORE UPDATE OR DELETE ON kb_entry_versions
    FOR EACH ROW EXECUTE FUNCTION kb_forbid_version_change();

-- kind 'phrasing': position 0 is the entry's question, 1.. its alternatives; kind 'document':
-- the whole entry (question and answer), which retrieval also scores against. The model that
-- made the vector is kept so a change of model re-encodes instead of mixing vector spaces.
-- The HNSW index (kb_phrasings_embedding_hnsw) is created by the application after bulk loads,
-- because filling an indexed table row by row is about a hundred times slower.
ALTER TABLE kb_phrasings
    ADD COLUMN kind text NOT NULL DEFAULT 'phrasing' CHECK (kind IN ('phrasing', 'document')),
    ADD COLUMN position smallint NOT NULL DEFAULT 0,
    ADD COLUMN embedding_model text;

-- Fusion weights and the answer threshold, fitted on data for one feature set (model).
CREATE TABLE kb_calibrations (
    id         bigserial PRIMARY KEY,
    signature  text NOT NULL,
    params     jsonb NOT NULL,
    report     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_calibrations_signature ON kb_calibrations (signature, id);

-- Feedback row is written when the bot answers (helpful NULL) and completed by the citizen.
ALTER TABLE kb_feedback
    ADD COLUMN question text,
    ADD COLUMN confidence real,
    ADD COLUMN answered_at timestamptz;
CREATE INDEX kb_feedback_created ON kb_feedback (created_at);

-- Consultations the base could not answer by itself: where editors should write entries.
CREATE TABLE kb_misses (
    id              bigserial PRIMARY KEY,
    question        text NOT NULL,
    top_entry_id    text REFERENCES kb_entries(id),
    confidence      real,
    conversation_id bigint REFERENCES conversations(id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_misses_created ON kb_misses (created_at);

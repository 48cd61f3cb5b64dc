-- Knowledge base: FAQ entries with versions, their phrasings (with e5 vectors), providers.
CREATE TABLE kb_entries (
    id           text PRIMARY KEY,
    question     text NOT NULL,
    alternatives text[] NOT NULL DEFAULT '{}',
    answer       text NOT NULL,
    unit         text REFERENCES units(code),
    tags         text[] NOT NULL DEFAULT '{}',
    valid_from   date,
    valid_until  date,
    status       text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'retired')),
    version      integer NOT NULL DEFAULT 1,
    updated_by   text NOT NULL DEFAULT 'system',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every saved state of an entry, who saved it and why; never changed afterwards.
CREATE TABLE kb_entry_versions (
    entry_id   text NOT NULL REFERENCES kb_entries(id),
    version    integer NOT NULL,
    action     text NOT NULL,
    snapshot   jsonb NOT NULL,
    changed_by text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entry_id, version)
);

-- The question and each alternative phrasing, one row each, with its embedding.
CREATE TABLE kb_phrasings (
    id        bigserial PRIMARY KEY,
    entry_id  text NOT NULL REFERENCES kb_entries(id) ON DELETE CASCADE,
    text      text NOT NULL,
    embedding vector(384)
);
CREATE INDEX kb_phrasings_entry ON kb_phrasings (entry_id);

CREATE TABLE kb_providers (
    id        text PRIMARY KEY,
    name      text NOT NULL,
    category  text NOT NULL,
    phone     text NOT NULL,
    area      text,
    hours     text,
    keywords  text[] NOT NULL DEFAULT '{}',
    active    boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_providers_category ON kb_providers (category) WHERE active;

-- Did an automatic answer help? One row per asked question.
CREATE TABLE kb_feedback (
    id              bigserial PRIMARY KEY,
    entry_id        text NOT NULL REFERENCES kb_entries(id),
    conversation_id bigint REFERENCES conversations(id),
    helpful         boolean,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_feedback_entry ON kb_feedback (entry_id);

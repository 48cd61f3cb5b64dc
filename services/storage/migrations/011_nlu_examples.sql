-- Issue 14: labelled messages the NLU learns from beside its YAML training files: a city's
-- historical work orders (hotline nlu import-orders) and every decision of the dispatch desk
-- (manual dispatch, lead change, arbitration). `hotline nlu retrain` reads them all.
CREATE TABLE nlu_examples (
    id            bigserial PRIMARY KEY,
    text          text NOT NULL CHECK (length(text) > 0),
    unit_code     text,
    request_type  text CHECK (request_type IN ('consult', 'complain', 'seek_help', 'suggest', 'report', 'praise')),
    -- import | dispatched | reassigned | arbitrated
    source        text NOT NULL,
    work_order_id bigint REFERENCES work_orders(id) ON DELETE SET NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    CHECK (unit_code IS NOT NULL OR request_type IS NOT NULL)
);
CREATE INDEX nlu_examples_order ON nlu_examples (work_order_id);

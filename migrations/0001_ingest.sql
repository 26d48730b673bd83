-- Ingestion state: one row per document of a tenant, one row per ingest job.
-- A document's row says which content (hash) and version the index holds and
-- which version is being written, so a re-run skips unchanged documents and a
-- run that was killed part-way resumes without writing anything twice.

CREATE TABLE ingest_documents (
    tenant             text        NOT NULL,
    doc_id             text        NOT NULL,
    source_uri         text        NOT NULL,
    title              text        NOT NULL DEFAULT '',
    document_type      text        NOT NULL DEFAULT '',
    -- SHA-256 (hex) of the content the index holds; '' before the first successful write.
    content_hash       text        NOT NULL DEFAULT '',
    -- Version the index holds; 0 before the first successful write.
    doc_version        bigint      NOT NULL DEFAULT 0 CHECK (doc_version >= 0),
    chunk_count        integer     NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
    status             text        NOT NULL CHECK (status IN ('PENDING', 'INDEXED', 'FAILED')),
    -- The content and version being written while status is PENDING.
    pending_hash       text,
    pending_version    bigint,
    -- Chunking, sparse encoding and graph settings the indexed version was made with.
    settings_signature text        NOT NULL DEFAULT '',
    error_code         text        NOT NULL DEFAULT '',
    error_reason       text        NOT NULL DEFAULT '',
    last_job_id        text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, doc_id)
);

CREATE INDEX ingest_documents_by_source ON ingest_documents (tenant, source_uri);

CREATE TABLE ingest_jobs (
    job_id           text        PRIMARY KEY,
    tenant           text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'PARTIAL_SUCCESS',
                                                           'FAILED', 'CANCELLED')),
    sources          jsonb       NOT NULL,
    options          jsonb       NOT NULL,
    counts           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    errors           jsonb       NOT NULL DEFAULT '[]'::jsonb,
    failure          text        NOT NULL DEFAULT '',
    -- Instance running the job and when it last said so; a stale heartbeat means it died.
    owner            text        NOT NULL DEFAULT '',
    heartbeat_at     timestamptz,
    cancel_requested boolean     NOT NULL DEFAULT false,
    create_time      timestamptz NOT NULL DEFAULT now(),
    start_time       timestamptz,
    end_time         timestamptz
);

CREATE INDEX ingest_jobs_by_tenant ON ingest_jobs (tenant, create_time DESC);
CREATE INDEX ingest_jobs_active ON ingest_jobs (state) WHERE state IN ('QUEUED', 'RUNNING');

-- Chat memory of svc_agent: sessions, their messages and feedback on answers, per tenant.
-- A question and its answer are written in one transaction (a turn), so a
-- session never holds a question without its answer; deleting a session
-- deletes its messages and their feedback.

CREATE TABLE agent_sessions (
    tenant        text        NOT NULL,
    session_id    text        NOT NULL,
    -- The first question, shortened.
    title         text        NOT NULL,
    message_count integer     NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, session_id)
);

-- ListSessions pages newest first by (updated_at, session_id).
CREATE INDEX agent_sessions_by_update ON agent_sessions (tenant, updated_at DESC, session_id DESC);

CREATE TABLE agent_messages (
    tenant                  text        NOT NULL,
    message_id              text        NOT NULL,
    session_id              text        NOT NULL,
    -- 1-based order within the session.
    position                integer     NOT NULL CHECK (position >= 1),
    role                    text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content                 text        NOT NULL,
    -- User messages: the standalone question retrieval used (follow-ups resolve against it).
    rewritten_query         text        NOT NULL DEFAULT '',
    -- Assistant messages: the citations as a JSON array.
    citations               jsonb       NOT NULL DEFAULT '[]'::jsonb,
    answered_from_documents boolean,
    -- Assistant messages: 'none', 'exact' or 'semantic'.
    cache_hit               text        NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, message_id),
    UNIQUE (tenant, session_id, position),
    FOREIGN KEY (tenant, session_id) REFERENCES agent_sessions (tenant, session_id) ON DELETE CASCADE
);

CREATE TABLE agent_feedback (
    tenant      text        NOT NULL,
    feedback_id text        NOT NULL,
    session_id  text        NOT NULL,
    message_id  text        NOT NULL,
    -- Who gave it (the caller's subject; '' when the edge did not say).
    subject     text        NOT NULL DEFAULT '',
    rating      text        NOT NULL CHECK (rating IN ('up', 'down')),
    comment     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, feedback_id),
    -- One opinion per person and answer: a second submission replaces the first.
    UNIQUE (tenant, message_id, subject),
    FOREIGN KEY (tenant, message_id) REFERENCES agent_messages (tenant, message_id) ON DELETE CASCADE
);

-- A session belongs to the person who started it: (tenant, subject). Sessions
-- written before identities were verified have subject '' and are listed for
-- no one but a caller whose token has an empty subject (none can: sub is required).

ALTER TABLE agent_sessions ADD COLUMN subject text NOT NULL DEFAULT '';

DROP INDEX agent_sessions_by_update;
CREATE INDEX agent_sessions_by_owner ON agent_sessions (tenant, subject, updated_at DESC, session_id DESC);

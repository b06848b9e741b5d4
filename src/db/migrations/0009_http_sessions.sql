-- Up Migration

-- Sessions of the Background Task Manager page, shared by every `taskmgr serve` replica behind one
-- address (a session made on one works on the others; logout on one ends it everywhere). The
-- cookie's value is kept only as its SHA-256 digest: reading this table gives no usable session.
CREATE TABLE http_sessions (
  id_digest   text PRIMARY KEY,
  user_name   text NOT NULL,
  role        text NOT NULL CHECK (role IN ('admin', 'viewer')),
  csrf_token  text NOT NULL,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX http_sessions_expiry ON http_sessions (expires_at);

-- Down Migration

DROP TABLE http_sessions;

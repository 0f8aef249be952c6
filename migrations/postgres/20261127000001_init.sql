-- Rapporteur schema, PostgreSQL. Times are integer epoch milliseconds; blobs are Automerge chunks.
-- Several server nodes share this database; see docs/deployment.md.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE meetings (
    slug        TEXT PRIMARY KEY,
    file        TEXT NOT NULL,
    index_doc   TEXT NOT NULL,
    summary_doc TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE groups (
    meeting TEXT NOT NULL REFERENCES meetings(slug),
    number  BIGINT NOT NULL,
    doc     TEXT NOT NULL,
    state   TEXT NOT NULL,
    PRIMARY KEY (meeting, number)
);

-- `last_seq` is the sequence number of the document's newest chunk. Appending takes it with
-- UPDATE ... RETURNING, which locks the row until commit: appends to one document commit in
-- sequence order, so a node that has read up to seq N never misses a chunk below N later.
CREATE TABLE documents (
    id       TEXT PRIMARY KEY,
    meeting  TEXT NOT NULL REFERENCES meetings(slug),
    kind     TEXT NOT NULL,
    grp      BIGINT,
    last_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE chunks (
    doc  TEXT NOT NULL REFERENCES documents(id),
    seq  BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (doc, seq)
);

CREATE TABLE submissions (
    meeting      TEXT NOT NULL,
    grp          BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    by_person    TEXT NOT NULL,
    by_name      TEXT NOT NULL,
    heads        TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    override     BIGINT NOT NULL,
    PRIMARY KEY (meeting, grp, version)
);

CREATE TABLE invites (
    id         TEXT PRIMARY KEY,
    meeting    TEXT NOT NULL REFERENCES meetings(slug),
    role       TEXT NOT NULL,
    grp        BIGINT,
    name       TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX invites_meeting ON invites(meeting);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    person     TEXT NOT NULL REFERENCES invites(id),
    created_at BIGINT NOT NULL
);

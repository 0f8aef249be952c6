-- Rapporteur schema, SQLite. Times are integer epoch milliseconds; blobs are Automerge chunks.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE meetings (
    slug        TEXT PRIMARY KEY,
    file        TEXT NOT NULL,          -- the meeting file, JSON
    index_doc   TEXT NOT NULL,
    summary_doc TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE groups (
    meeting TEXT NOT NULL REFERENCES meetings(slug),
    number  INTEGER NOT NULL,
    doc     TEXT NOT NULL,
    state   TEXT NOT NULL,              -- drafting | submitted | locked
    PRIMARY KEY (meeting, number)
);

CREATE TABLE documents (
    id      TEXT PRIMARY KEY,           -- automerge-repo document id
    meeting TEXT NOT NULL REFERENCES meetings(slug),
    kind    TEXT NOT NULL,              -- index | group | summary
    grp     INTEGER                     -- the group number for kind = group
);

-- A document is its chunks in seq order: at most one snapshot (the lowest seq) and the
-- incremental chunks stored after it. Compaction replaces a prefix by one snapshot.
CREATE TABLE chunks (
    doc  TEXT NOT NULL REFERENCES documents(id),
    seq  INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (doc, seq)
);

CREATE TABLE submissions (
    meeting      TEXT NOT NULL,
    grp          INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    by_person    TEXT NOT NULL,
    by_name      TEXT NOT NULL,
    heads        TEXT NOT NULL,         -- JSON array of hex change hashes
    content_hash TEXT NOT NULL,
    override     INTEGER NOT NULL,
    PRIMARY KEY (meeting, grp, version)
);

CREATE TABLE invites (
    id         TEXT PRIMARY KEY,        -- the person id
    meeting    TEXT NOT NULL REFERENCES meetings(slug),
    role       TEXT NOT NULL,
    grp        INTEGER,
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,    -- SHA-256 of the secret; the secret is never stored
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX invites_meeting ON invites(meeting);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    person     TEXT NOT NULL REFERENCES invites(id),
    created_at INTEGER NOT NULL
);

-- Who writes with which Automerge actor id, per document: the person of the connection whose
-- change with that actor the server first accepted. First writer wins: a row never changes, and
-- the server refuses another person's change with an actor that is already someone's
-- (docs/protocol.md, "Authorship"). Server edits are not recorded here: their commit message
-- names the person who asked for them.
CREATE TABLE document_actors (
    doc        TEXT NOT NULL REFERENCES documents(id),
    actor      TEXT NOT NULL,
    person     TEXT NOT NULL REFERENCES invites(id),
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (doc, actor)
);

//! Newtype identifiers, so that a document id, a peer id and a person id cannot be mixed up.
//!
//! Document ids follow `automerge-repo`: 16 random bytes in base58check, shown to clients as
//! the URL `automerge:<id>`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An `automerge-repo` document id (base58check of 16 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocId(String);

impl DocId {
    /// A fresh random document id.
    pub fn random() -> Self {
        let bytes: [u8; 16] = rand::random();
        Self(bs58::encode(bytes).with_check().into_string())
    }

    /// Parses a document id as a client sends it, with or without the `automerge:` prefix.
    /// Only well-formed ids (valid base58check of 16 bytes) are accepted.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.strip_prefix("automerge:").unwrap_or(s);
        if s.len() > 64 {
            return None;
        }
        let bytes = bs58::decode(s).with_check(None).into_vec().ok()?;
        (bytes.len() == 16).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL clients pass to `repo.find`.
    pub fn url(&self) -> String {
        format!("automerge:{}", self.0)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sync peer id as announced in `join` (chosen by the client) or the server's own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub String);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person: one invite. Every session and connection is tied to one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub String);

impl PersonId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_round_trip_and_garbage_is_refused() {
        let id = DocId::random();
        assert_eq!(DocId::parse(&id.url()), Some(id.clone()));
        assert_eq!(DocId::parse(id.as_str()), Some(id));
        assert_eq!(DocId::parse("not-an-id"), None);
        assert_eq!(DocId::parse(""), None);
        // A valid base58check of the wrong length is not a document id.
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert_eq!(DocId::parse(&short), None);
    }

    #[test]
    fn ids_match_automerge_repo_encoding() {
        // From automerge-repo: the document id of 16 zero bytes.
        let zero = bs58::encode([0u8; 16]).with_check().into_string();
        assert!(DocId::parse(&zero).is_some());
        assert!(zero.starts_with("1111111111111111"));
    }
}

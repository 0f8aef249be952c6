//! Who is asking: invites, sessions, and the rights of a role on each document.
//!
//! An invite is a link carrying a 256-bit random secret; only its SHA-256 is stored. Opening it
//! starts a session, whose own random secret lives in an HttpOnly cookie. Scripts present the
//! invite secret itself as `Authorization: Bearer`, or as `?token=` on the WebSocket URL.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::docs::Access;
use crate::ids::PersonId;
use crate::meeting::Role;
use crate::store::{now_ms, DocKind, DocRecord, InviteRecord, Store, StoreError};

pub const SESSION_COOKIE: &str = "rapporteur_session";

/// An authenticated person.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: PersonId,
    pub meeting: String,
    pub role: Role,
    pub group: Option<u32>,
    pub name: String,
}

impl From<InviteRecord> for Person {
    fn from(i: InviteRecord) -> Self {
        Self {
            id: i.id,
            meeting: i.meeting,
            role: i.role,
            group: i.group,
            name: i.name,
        }
    }
}

impl Person {
    /// The role table of DESIGN.md §3, for one document.
    pub fn access(&self, doc: &DocRecord) -> Option<Access> {
        if doc.meeting != self.meeting {
            return None;
        }
        let writes = match doc.kind {
            DocKind::Index => false,
            DocKind::Group(n) => {
                self.role == Role::CoFacilitator
                    || (self.role.needs_group() && self.group == Some(n))
            }
            DocKind::Summary => self.role == Role::CoFacilitator,
        };
        Some(if writes { Access::Write } else { Access::Read })
    }

    /// May submit group `n`'s outcome.
    pub fn may_submit(&self, n: u32) -> bool {
        self.role == Role::CoFacilitator || (self.role.needs_group() && self.group == Some(n))
    }
}

/// A fresh secret: 32 random bytes, URL-safe base64 without padding.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("unknown, expired or revoked invite")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn usable(invite: InviteRecord) -> Result<Person, AuthError> {
    if !invite.usable_at(now_ms()) {
        return Err(AuthError::Invalid);
    }
    Ok(invite.into())
}

/// Resolves an invite secret (bearer token or `?token=`).
pub async fn person_for_token(store: &dyn Store, token: &str) -> Result<Person, AuthError> {
    if token.is_empty() || token.len() > 200 {
        return Err(AuthError::Invalid);
    }
    let invite = store.invite_by_token(&hash_token(token)).await?;
    usable(invite.ok_or(AuthError::Invalid)?)
}

/// Resolves a session secret (the cookie).
pub async fn person_for_session(store: &dyn Store, secret: &str) -> Result<Person, AuthError> {
    if secret.is_empty() || secret.len() > 200 {
        return Err(AuthError::Invalid);
    }
    let invite = store.session(&hash_token(secret)).await?;
    usable(invite.ok_or(AuthError::Invalid)?)
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
}

/// The person behind a request: bearer token first, then `?token=`, then the session cookie.
pub async fn authenticate(
    store: &dyn Store,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Arc<Person>, AuthError> {
    if let Some(token) = bearer(headers).or(query_token) {
        return person_for_token(store, token).await.map(Arc::new);
    }
    if let Some(secret) = session_cookie(headers) {
        return person_for_session(store, secret).await.map(Arc::new);
    }
    Err(AuthError::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DocId;

    fn person(role: Role, group: Option<u32>) -> Person {
        Person {
            id: PersonId::random(),
            meeting: "m".into(),
            role,
            group,
            name: "n".into(),
        }
    }

    fn doc(kind: DocKind) -> DocRecord {
        DocRecord {
            id: DocId::random(),
            meeting: "m".into(),
            kind,
        }
    }

    #[test]
    fn the_role_table() {
        use Access::{Read, Write};
        let g1 = doc(DocKind::Group(1));
        let g2 = doc(DocKind::Group(2));
        let summary = doc(DocKind::Summary);
        let index = doc(DocKind::Index);
        let cases = [
            (person(Role::Rapporteur, Some(1)), [Write, Read, Read, Read]),
            (person(Role::Moderator, Some(1)), [Write, Read, Read, Read]),
            (
                person(Role::CoFacilitator, None),
                [Write, Write, Write, Read],
            ),
            (person(Role::Secretariat, None), [Read, Read, Read, Read]),
            (person(Role::Delegate, None), [Read, Read, Read, Read]),
            (person(Role::Observer, None), [Read, Read, Read, Read]),
        ];
        for (p, expected) in cases {
            let got = [&g1, &g2, &summary, &index].map(|d| p.access(d).unwrap());
            assert_eq!(got, expected, "{:?}", p.role);
        }
        let other_meeting = DocRecord {
            meeting: "other".into(),
            ..doc(DocKind::Index)
        };
        assert_eq!(
            person(Role::CoFacilitator, None).access(&other_meeting),
            None
        );
    }

    #[test]
    fn cookies_and_bearer_are_found() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=b; rapporteur_session=xyz; c=d".parse().unwrap(),
        );
        h.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert_eq!(session_cookie(&h), Some("xyz"));
        assert_eq!(bearer(&h), Some("tok"));
        assert_eq!(new_token().len(), 43);
    }
}

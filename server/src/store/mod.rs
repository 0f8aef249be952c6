//! Persistence: the `Store` trait and its implementations.
//!
//! Everything durable goes through `Store`: meetings, groups and submissions, invites and
//! sessions, and documents as Automerge chunks. The sync code only sees this trait, so a
//! PostgreSQL implementation can stand beside SQLite without touching it.
//!
//! Document chunks: a document is the concatenation of its chunks in `seq` order. Incremental
//! chunks are appended as edits are accepted; compaction replaces a prefix of them by one
//! snapshot in a single transaction, so a reader sees either the old chunks or the snapshot,
//! never neither.

mod committer;
mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use committer::Committer;
pub use sqlite::SqliteStore;

use crate::ids::{DocId, PersonId};
use crate::meeting::{MeetingFile, Role};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub struct MeetingRecord {
    pub slug: String,
    pub file: MeetingFile,
    pub index_doc: DocId,
    pub summary_doc: DocId,
    pub created_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupState {
    Drafting,
    Submitted,
    Locked,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Drafting => "drafting",
            GroupState::Submitted => "submitted",
            GroupState::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "drafting" => Some(Self::Drafting),
            "submitted" => Some(Self::Submitted),
            "locked" => Some(Self::Locked),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct GroupRecord {
    pub meeting: String,
    pub number: u32,
    pub doc: DocId,
    pub state: GroupState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    Index,
    Group(u32),
    Summary,
}

#[derive(Clone, Debug)]
pub struct DocRecord {
    pub id: DocId,
    pub meeting: String,
    pub kind: DocKind,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionRecord {
    #[serde(skip)]
    pub meeting: String,
    #[serde(skip)]
    pub group: u32,
    pub version: u32,
    pub at: i64,
    pub by_person: String,
    #[serde(rename = "by")]
    pub by_name: String,
    pub heads: Vec<String>,
    pub content_hash: String,
    #[serde(rename = "override")]
    pub override_rules: bool,
}

#[derive(Clone, Debug)]
pub struct InviteRecord {
    pub id: PersonId,
    pub meeting: String,
    pub role: Role,
    pub group: Option<u32>,
    pub name: String,
    pub token_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A new meeting with everything created alongside it, written in one transaction.
pub struct NewMeeting {
    pub meeting: MeetingRecord,
    pub groups: Vec<GroupRecord>,
    /// Every document of the meeting with its initial chunk.
    pub docs: Vec<(DocRecord, Vec<u8>)>,
}

#[derive(Clone, Debug)]
pub struct Chunk {
    pub seq: i64,
    pub data: Vec<u8>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database does: for `/readyz`.
    async fn ping(&self) -> Result<()>;

    async fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Sets `key` unless it is set already; returns the value in force.
    async fn init_setting(&self, key: &str, value: &str) -> Result<String>;

    /// Fails with `Conflict` if the slug is taken.
    async fn create_meeting(&self, new: &NewMeeting) -> Result<()>;
    async fn meetings(&self) -> Result<Vec<MeetingRecord>>;
    async fn meeting(&self, slug: &str) -> Result<Option<MeetingRecord>>;
    async fn update_meeting_file(&self, slug: &str, file: &MeetingFile) -> Result<()>;

    async fn groups(&self, meeting: &str) -> Result<Vec<GroupRecord>>;
    async fn set_group_state(&self, meeting: &str, group: u32, state: GroupState) -> Result<()>;
    /// Stores a submission under the next version number (returned) and marks the group
    /// submitted, in one transaction.
    async fn add_submission(&self, submission: &SubmissionRecord) -> Result<u32>;
    async fn submissions(&self, meeting: &str) -> Result<Vec<SubmissionRecord>>;

    async fn document(&self, id: &DocId) -> Result<Option<DocRecord>>;
    /// Appends one chunk to each listed document, all in one transaction (group commit).
    async fn append_chunks(&self, chunks: &[(DocId, Vec<u8>)]) -> Result<()>;
    async fn load_chunks(&self, id: &DocId) -> Result<Vec<Chunk>>;
    /// Replaces the chunks with `seq <= upto` by `snapshot`, atomically.
    async fn compact(&self, id: &DocId, upto: i64, snapshot: &[u8]) -> Result<()>;

    async fn create_invite(&self, invite: &InviteRecord) -> Result<()>;
    async fn invite(&self, id: &PersonId) -> Result<Option<InviteRecord>>;
    async fn invite_by_token(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>>;
    async fn invites(&self, meeting: &str) -> Result<Vec<InviteRecord>>;
    /// Returns false if it was already revoked or does not exist.
    async fn revoke_invite(&self, id: &PersonId, at: i64) -> Result<bool>;

    async fn create_session(&self, token_hash: &[u8], person: &PersonId, at: i64) -> Result<()>;
    async fn session(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>>;
    async fn delete_session(&self, token_hash: &[u8]) -> Result<()>;
}

/// Opens the store named by a database URL.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    } else {
        Err(StoreError::Corrupt(format!(
            "unsupported database URL (expected sqlite://...): {url}"
        )))
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod contract;

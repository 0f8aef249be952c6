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
mod postgres;
mod rows;
mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use committer::Committer;
pub use postgres::PostgresStore;
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
    #[error("{0}")]
    Unsupported(String),
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

impl InviteRecord {
    /// Neither revoked nor expired at `now` (ms since the epoch): its person may sign in and
    /// counts among the meeting's people.
    pub fn usable_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }
}

/// An Automerge actor id of a document and the person who writes with it (see
/// `Store::claim_actors`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorClaim {
    /// The actor id, hex.
    pub actor: String,
    pub person: PersonId,
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

    /// A small real write: after a failed commit, `/readyz` reports ready again only once the
    /// database takes writes again (a full disk answers pings).
    async fn probe_write(&self) -> Result<()> {
        self.ping().await
    }

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
    /// Appends one chunk to each listed document, all in one transaction (group commit), and
    /// returns the sequence number each got. Other nodes sharing the database hear of them
    /// (see `subscribe`).
    async fn append_chunks(&self, chunks: &[(DocId, Vec<u8>)]) -> Result<Vec<i64>>;
    async fn load_chunks(&self, id: &DocId) -> Result<Vec<Chunk>>;
    /// The chunks with a sequence number above `after`, in order.
    async fn load_chunks_after(&self, id: &DocId, after: i64) -> Result<Vec<Chunk>>;
    /// Replaces the chunks with `seq <= upto` by `snapshot`, atomically.
    async fn compact(&self, id: &DocId, upto: i64, snapshot: &[u8]) -> Result<()>;

    /// Records that `person` writes with each of `actors` (hex actor ids) in `doc`, for every
    /// actor nobody claimed before, in one transaction; returns the person each actor belongs
    /// to afterwards, in order. First writer wins: a claim never changes, so an answer other
    /// than `person` means someone else claimed that actor first.
    async fn claim_actors(
        &self,
        doc: &DocId,
        actors: &[String],
        person: &PersonId,
        at: i64,
    ) -> Result<Vec<PersonId>>;
    /// Every actor claim of a document.
    async fn document_actors(&self, doc: &DocId) -> Result<Vec<ActorClaim>>;

    async fn create_invite(&self, invite: &InviteRecord) -> Result<()>;
    async fn invite(&self, id: &PersonId) -> Result<Option<InviteRecord>>;
    async fn invite_by_token(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>>;
    async fn invites(&self, meeting: &str) -> Result<Vec<InviteRecord>>;
    /// Returns false if it was already revoked or does not exist.
    async fn revoke_invite(&self, id: &PersonId, at: i64) -> Result<bool>;

    async fn create_session(&self, token_hash: &[u8], person: &PersonId, at: i64) -> Result<()>;
    async fn session(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>>;
    async fn delete_session(&self, token_hash: &[u8]) -> Result<()>;

    /// Events from the other server nodes sharing this database, if it can be shared (a
    /// single-process store answers `None`).
    async fn subscribe(&self) -> Result<Option<tokio::sync::mpsc::Receiver<ClusterEvent>>> {
        Ok(None)
    }

    /// Tells the other nodes (no-op where nothing is shared).
    async fn publish(&self, _event: &ClusterEvent) -> Result<()> {
        Ok(())
    }
}

/// What server nodes sharing one database tell each other. Chunk notices are sent by the
/// store itself, in the transaction that appends the chunks; the others by `publish`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClusterEvent {
    /// A document got a chunk with this sequence number.
    Chunk { doc: DocId, seq: i64 },
    /// An ephemeral message to relay to a document's local peers.
    #[serde(rename_all = "camelCase")]
    Ephemeral {
        node: String,
        doc: DocId,
        sender: String,
        session: String,
        count: u64,
        /// Base64 of the (already stamped) payload.
        data: String,
    },
    /// A node's counts of editors and viewers on a document.
    Presence {
        node: String,
        meeting: String,
        doc: DocId,
        editors: u32,
        viewers: u32,
    },
    /// An invite was revoked: end the person's connections everywhere.
    Revoked { person: PersonId },
    /// A group was locked or reopened.
    Locked { doc: DocId, locked: bool },
    /// The listening connection was lost and re-established: notices may have been missed.
    Resync,
}

/// Opens the store named by a database URL: `sqlite://path` or `postgres://...`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::Unsupported(
            "unsupported database URL (expected sqlite://... or postgres://...)".into(),
        ))
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

/// Helpers for tests that need a real database of each kind.
pub mod testing {
    use sqlx::Connection;

    /// The PostgreSQL server tests use: `DATABASE_URL_PG`, else the local default.
    pub fn postgres_admin_url() -> String {
        std::env::var("DATABASE_URL_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    /// Creates a fresh, uniquely named database on the test PostgreSQL server and returns its
    /// URL. Fails (it does not skip) when the server is not there.
    pub async fn fresh_postgres_database() -> String {
        let admin = postgres_admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is required for this test ({admin}): {e}"));
        let name = format!("rapporteur_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        format!("{base}/{name}")
    }
}

//! The embedded default: one SQLite file, in WAL mode with `synchronous = FULL`, so that a
//! committed transaction survives a crash of the process or of the machine.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::rows::{invite_columns, is_unique_violation, parse_doc_id};
use super::*;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

super::rows::row_mappers!(sqlx::sqlite::SqliteRow);

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn probe_write(&self) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('write_probe', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(now_ms().to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("value")))
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        self.setting(key).await?.ok_or(StoreError::NotFound)
    }

    async fn create_meeting(&self, new: &NewMeeting) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let m = &new.meeting;
        let file =
            serde_json::to_string(&m.file).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO meetings (slug, file, index_doc, summary_doc, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&m.slug)
        .bind(file)
        .bind(m.index_doc.as_str())
        .bind(m.summary_doc.as_str())
        .bind(m.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
            other => other?,
        };
        for (doc, chunk) in &new.docs {
            let (kind, group) = match doc.kind {
                DocKind::Index => ("index", None),
                DocKind::Group(n) => ("group", Some(n as i64)),
                DocKind::Summary => ("summary", None),
            };
            sqlx::query("INSERT INTO documents (id, meeting, kind, grp) VALUES ($1, $2, $3, $4)")
                .bind(doc.id.as_str())
                .bind(&doc.meeting)
                .bind(kind)
                .bind(group)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO chunks (doc, seq, data) VALUES ($1, 1, $2)")
                .bind(doc.id.as_str())
                .bind(chunk)
                .execute(&mut *tx)
                .await?;
        }
        for g in &new.groups {
            sqlx::query("INSERT INTO groups (meeting, number, doc, state) VALUES ($1, $2, $3, $4)")
                .bind(&g.meeting)
                .bind(g.number as i64)
                .bind(g.doc.as_str())
                .bind(g.state.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn meetings(&self) -> Result<Vec<MeetingRecord>> {
        let rows = sqlx::query("SELECT * FROM meetings ORDER BY created_at, slug")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(meeting_from_row).collect()
    }

    async fn meeting(&self, slug: &str) -> Result<Option<MeetingRecord>> {
        let row = sqlx::query("SELECT * FROM meetings WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(meeting_from_row).transpose()
    }

    async fn update_meeting_file(&self, slug: &str, file: &MeetingFile) -> Result<()> {
        let file = serde_json::to_string(file).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let done = sqlx::query("UPDATE meetings SET file = $1 WHERE slug = $2")
            .bind(file)
            .bind(slug)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn groups(&self, meeting: &str) -> Result<Vec<GroupRecord>> {
        let rows = sqlx::query("SELECT * FROM groups WHERE meeting = $1 ORDER BY number")
            .bind(meeting)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                let doc: String = row.try_get("doc")?;
                Ok(GroupRecord {
                    meeting: row.try_get("meeting")?,
                    number: row.try_get::<i64, _>("number")? as u32,
                    doc: parse_doc_id(&doc)?,
                    state: GroupState::parse(&state)
                        .ok_or_else(|| StoreError::Corrupt(format!("group state {state}")))?,
                })
            })
            .collect()
    }

    async fn set_group_state(&self, meeting: &str, group: u32, state: GroupState) -> Result<()> {
        let done = sqlx::query("UPDATE groups SET state = $1 WHERE meeting = $2 AND number = $3")
            .bind(state.as_str())
            .bind(meeting)
            .bind(group as i64)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn add_submission(&self, s: &SubmissionRecord) -> Result<u32> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) + 1 AS v FROM submissions WHERE meeting = $1 AND grp = $2",
        )
        .bind(&s.meeting)
        .bind(s.group as i64)
        .fetch_one(&mut *tx)
        .await?
        .get("v");
        let heads =
            serde_json::to_string(&s.heads).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO submissions (meeting, grp, version, at, by_person, by_name, heads, content_hash, override)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.meeting)
        .bind(s.group as i64)
        .bind(version)
        .bind(s.at)
        .bind(&s.by_person)
        .bind(&s.by_name)
        .bind(heads)
        .bind(&s.content_hash)
        .bind(s.override_rules as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE groups SET state = 'submitted' WHERE meeting = $1 AND number = $2")
            .bind(&s.meeting)
            .bind(s.group as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(version as u32)
    }

    async fn submissions(&self, meeting: &str) -> Result<Vec<SubmissionRecord>> {
        let rows =
            sqlx::query("SELECT * FROM submissions WHERE meeting = $1 ORDER BY grp, version")
                .bind(meeting)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(submission_from_row).collect()
    }

    async fn document(&self, id: &DocId) -> Result<Option<DocRecord>> {
        let row = sqlx::query("SELECT * FROM documents WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("kind")?;
        let group: Option<i64> = row.try_get("grp")?;
        let kind = match (kind.as_str(), group) {
            ("index", _) => DocKind::Index,
            ("summary", _) => DocKind::Summary,
            ("group", Some(n)) => DocKind::Group(n as u32),
            _ => return Err(StoreError::Corrupt(format!("document kind {kind}"))),
        };
        Ok(Some(DocRecord {
            id: id.clone(),
            meeting: row.try_get("meeting")?,
            kind,
        }))
    }

    async fn append_chunks(&self, chunks: &[(DocId, Vec<u8>)]) -> Result<Vec<i64>> {
        // One writer at a time: SQLite's write lock orders appends, so MAX + 1 is safe.
        let mut tx = self.pool.begin().await?;
        let mut seqs = Vec::with_capacity(chunks.len());
        for (doc, data) in chunks {
            let seq: i64 = sqlx::query(
                "INSERT INTO chunks (doc, seq, data)
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2 FROM chunks WHERE doc = $1
                 RETURNING seq",
            )
            .bind(doc.as_str())
            .bind(data)
            .fetch_one(&mut *tx)
            .await?
            .get("seq");
            seqs.push(seq);
        }
        tx.commit().await?;
        Ok(seqs)
    }

    async fn load_chunks_after(&self, id: &DocId, after: i64) -> Result<Vec<Chunk>> {
        let rows =
            sqlx::query("SELECT seq, data FROM chunks WHERE doc = $1 AND seq > $2 ORDER BY seq")
                .bind(id.as_str())
                .bind(after)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| Chunk {
                seq: r.get("seq"),
                data: r.get("data"),
            })
            .collect())
    }

    async fn load_chunks(&self, id: &DocId) -> Result<Vec<Chunk>> {
        let rows = sqlx::query("SELECT seq, data FROM chunks WHERE doc = $1 ORDER BY seq")
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Chunk {
                seq: r.get("seq"),
                data: r.get("data"),
            })
            .collect())
    }

    async fn compact(&self, id: &DocId, upto: i64, snapshot: &[u8]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM chunks WHERE doc = $1 AND seq <= $2")
            .bind(id.as_str())
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO chunks (doc, seq, data) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(upto)
            .bind(snapshot)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_actors(
        &self,
        doc: &DocId,
        actors: &[String],
        person: &PersonId,
        at: i64,
    ) -> Result<Vec<PersonId>> {
        let mut tx = self.pool.begin().await?;
        let mut owners = Vec::with_capacity(actors.len());
        for actor in actors {
            sqlx::query(
                "INSERT INTO document_actors (doc, actor, person, claimed_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (doc, actor) DO NOTHING",
            )
            .bind(doc.as_str())
            .bind(actor)
            .bind(&person.0)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let owner: String =
                sqlx::query("SELECT person FROM document_actors WHERE doc = $1 AND actor = $2")
                    .bind(doc.as_str())
                    .bind(actor)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("person")?;
            owners.push(PersonId(owner));
        }
        tx.commit().await?;
        Ok(owners)
    }

    async fn document_actors(&self, doc: &DocId) -> Result<Vec<ActorClaim>> {
        let rows = sqlx::query(
            "SELECT actor, person FROM document_actors WHERE doc = $1 ORDER BY claimed_at, actor",
        )
        .bind(doc.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ActorClaim {
                    actor: r.try_get("actor")?,
                    person: PersonId(r.try_get("person")?),
                })
            })
            .collect()
    }

    async fn create_invite(&self, i: &InviteRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO invites (id, meeting, role, grp, name, token_hash, created_at, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&i.id.0)
        .bind(&i.meeting)
        .bind(i.role.as_str())
        .bind(i.group.map(|g| g as i64))
        .bind(&i.name)
        .bind(&i.token_hash)
        .bind(i.created_at)
        .bind(i.expires_at)
        .bind(i.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn invite(&self, id: &PersonId) -> Result<Option<InviteRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            invite_columns!(),
            " FROM invites i WHERE i.id = $1"
        ))
        .bind(&id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invite_from_row).transpose()
    }

    async fn invite_by_token(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            invite_columns!(),
            " FROM invites i WHERE i.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invite_from_row).transpose()
    }

    async fn invites(&self, meeting: &str) -> Result<Vec<InviteRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            invite_columns!(),
            " FROM invites i WHERE i.meeting = $1 ORDER BY i.created_at, i.id"
        ))
        .bind(meeting)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invite_from_row).collect()
    }

    async fn revoke_invite(&self, id: &PersonId, at: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE invites SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(&id.0)
                .execute(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM sessions WHERE person = $1")
            .bind(&id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_session(&self, token_hash: &[u8], person: &PersonId, at: i64) -> Result<()> {
        sqlx::query("INSERT INTO sessions (token_hash, person, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(&person.0)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            invite_columns!(),
            " FROM sessions s JOIN invites i ON i.id = s.person WHERE s.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invite_from_row).transpose()
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

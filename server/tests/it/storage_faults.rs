//! Database faults: a store that fails on demand, wrapped around the real SQLite store.
//!
//! While writes fail the server refuses edits with a clear error, never acknowledges them,
//! and reports not ready; once the database works again, the same client's edit goes through
//! and the server is ready again. A write that reached the database but reported failure (the
//! connection died after the commit) does no harm either: the change is sent again and the
//! stored document stays loadable and equal to what the clients hold.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use rapporteur::ids::{DocId, PersonId};
use rapporteur::meeting::{MeetingFile, Role};
use rapporteur::store::*;

use crate::forged::{add_bullet, bullet_texts};
use crate::support::*;

/// How the wrapped store fails.
#[derive(Default)]
pub struct Faults {
    /// Every write and `ping` fail, as with a read-only or full disk.
    pub broken: AtomicBool,
    /// `append_chunks` writes, then reports failure, as when the connection drops after the
    /// commit.
    pub fail_after_write: AtomicBool,
    /// Faults injected so far.
    pub injected: AtomicU64,
}

impl Faults {
    fn check(&self) -> Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Corrupt("injected fault: disk I/O error".into()));
        }
        Ok(())
    }
}

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Arc<Faults>,
}

#[async_trait]
impl Store for FaultyStore {
    async fn ping(&self) -> Result<()> {
        self.faults.check()?;
        self.inner.ping().await
    }
    async fn setting(&self, key: &str) -> Result<Option<String>> {
        self.inner.setting(key).await
    }
    async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        self.faults.check()?;
        self.inner.init_setting(key, value).await
    }
    async fn create_meeting(&self, new: &NewMeeting) -> Result<()> {
        self.faults.check()?;
        self.inner.create_meeting(new).await
    }
    async fn meetings(&self) -> Result<Vec<MeetingRecord>> {
        self.inner.meetings().await
    }
    async fn meeting(&self, slug: &str) -> Result<Option<MeetingRecord>> {
        self.inner.meeting(slug).await
    }
    async fn update_meeting_file(&self, slug: &str, file: &MeetingFile) -> Result<()> {
        self.faults.check()?;
        self.inner.update_meeting_file(slug, file).await
    }
    async fn groups(&self, meeting: &str) -> Result<Vec<GroupRecord>> {
        self.inner.groups(meeting).await
    }
    async fn set_group_state(&self, meeting: &str, group: u32, state: GroupState) -> Result<()> {
        self.faults.check()?;
        self.inner.set_group_state(meeting, group, state).await
    }
    async fn add_submission(&self, submission: &SubmissionRecord) -> Result<u32> {
        self.faults.check()?;
        self.inner.add_submission(submission).await
    }
    async fn submissions(&self, meeting: &str) -> Result<Vec<SubmissionRecord>> {
        self.inner.submissions(meeting).await
    }
    async fn document(&self, id: &DocId) -> Result<Option<DocRecord>> {
        self.inner.document(id).await
    }
    async fn append_chunks(&self, chunks: &[(DocId, Vec<u8>)]) -> Result<Vec<i64>> {
        self.faults.check()?;
        let seqs = self.inner.append_chunks(chunks).await?;
        if self.faults.fail_after_write.load(Ordering::SeqCst) {
            self.faults.injected.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Corrupt(
                "injected fault: connection lost after commit".into(),
            ));
        }
        Ok(seqs)
    }
    async fn load_chunks(&self, id: &DocId) -> Result<Vec<Chunk>> {
        self.inner.load_chunks(id).await
    }
    async fn load_chunks_after(&self, id: &DocId, after: i64) -> Result<Vec<Chunk>> {
        self.inner.load_chunks_after(id, after).await
    }
    async fn compact(&self, id: &DocId, upto: i64, snapshot: &[u8]) -> Result<()> {
        self.faults.check()?;
        self.inner.compact(id, upto, snapshot).await
    }
    async fn claim_actors(
        &self,
        doc: &DocId,
        actors: &[String],
        person: &PersonId,
        at: i64,
    ) -> Result<Vec<PersonId>> {
        self.faults.check()?;
        self.inner.claim_actors(doc, actors, person, at).await
    }
    async fn document_actors(&self, doc: &DocId) -> Result<Vec<ActorClaim>> {
        self.inner.document_actors(doc).await
    }
    async fn create_invite(&self, invite: &InviteRecord) -> Result<()> {
        self.inner.create_invite(invite).await
    }
    async fn invite(&self, id: &PersonId) -> Result<Option<InviteRecord>> {
        self.inner.invite(id).await
    }
    async fn invite_by_token(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>> {
        self.inner.invite_by_token(token_hash).await
    }
    async fn invites(&self, meeting: &str) -> Result<Vec<InviteRecord>> {
        self.inner.invites(meeting).await
    }
    async fn revoke_invite(&self, id: &PersonId, at: i64) -> Result<bool> {
        self.faults.check()?;
        self.inner.revoke_invite(id, at).await
    }
    async fn create_session(&self, token_hash: &[u8], person: &PersonId, at: i64) -> Result<()> {
        self.faults.check()?;
        self.inner.create_session(token_hash, person, at).await
    }
    async fn session(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>> {
        self.inner.session(token_hash).await
    }
    async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        self.inner.delete_session(token_hash).await
    }
}

/// A server whose store fails when told to.
pub async fn faulty_server() -> (TestServer, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let f = faults.clone();
    let options = Options {
        wrap_store: Some(Box::new(move |inner| {
            Arc::new(FaultyStore { inner, faults: f }) as Arc<dyn Store>
        })),
        ..Options::default()
    };
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), options).await;
    (server, faults)
}

#[tokio::test]
async fn a_failing_database_refuses_edits_reports_not_ready_and_recovers() {
    let (server, faults) = faulty_server().await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let url = server.ws_url(&token);
    let witness_token = server.invite(Role::Rapporteur, Some(1)).await;
    let mut witness = Peer::join(&server.ws_url(&witness_token)).await;
    let mut witnessed = Replica::fetch(&mut witness, &doc).await;

    let mut peer = Peer::join(&url).await;
    let mut replica = Replica::fetch(&mut peer, &doc).await;
    add_bullet(&mut replica.doc, "b-1", "Stored before", &me, "proposed");
    replica.sync_acked(&mut peer).await;
    assert_eq!(http_status(server.addr, "/readyz").await, 200);

    // The disk fails: the edit is refused with a clear error and never acknowledged.
    faults.broken.store(true, Ordering::SeqCst);
    add_bullet(
        &mut replica.doc,
        "b-2",
        "Written while broken",
        &me,
        "proposed",
    );
    let unstored = replica.doc.get_heads();
    replica.push_unacked(&mut peer).await;
    let err = peer.expect_error().await;
    assert!(err.contains("could not store"), "{err}");
    assert!(
        unstored.iter().all(|h| !replica.server_heads.contains(h)),
        "acknowledged a change it did not store"
    );
    assert_eq!(http_status(server.addr, "/readyz").await, 503);

    // The database works again: the node is ready before anyone writes. The client
    // reconnects (its copy still has the change) and the change goes through.
    faults.broken.store(false, Ordering::SeqCst);
    assert_eq!(http_status(server.addr, "/readyz").await, 200);
    let mut peer = Peer::join(&url).await;
    replica.state = automerge::sync::State::new();
    replica.sync_acked(&mut peer).await;
    assert_eq!(http_status(server.addr, "/readyz").await, 200);
    witnessed
        .sync_until(&mut witness, |r| bullet_texts(&r.doc).len() == 2)
        .await;
    assert_eq!(
        bullet_texts(&witnessed.doc),
        ["Stored before", "Written while broken"]
    );

    // A commit that reports failure after it happened: refused, then sent again, and the
    // stored document is still one that loads and equals the clients' copy.
    faults.fail_after_write.store(true, Ordering::SeqCst);
    add_bullet(
        &mut replica.doc,
        "b-3",
        "Committed, reported lost",
        &me,
        "proposed",
    );
    replica.push_unacked(&mut peer).await;
    assert!(peer.expect_error().await.contains("could not store"));
    faults.fail_after_write.store(false, Ordering::SeqCst);
    let mut peer = Peer::join(&url).await;
    replica.state = automerge::sync::State::new();
    replica.sync_acked(&mut peer).await;
    assert!(faults.injected.load(Ordering::SeqCst) >= 2);

    let dir = server.stop().await;
    let server = TestServer::start_in(dir).await;
    let mut peer = Peer::join(&server.ws_url(&witness_token)).await;
    let fresh = Replica::fetch(&mut peer, &doc).await;
    assert_eq!(
        bullet_texts(&fresh.doc),
        [
            "Stored before",
            "Written while broken",
            "Committed, reported lost"
        ]
    );
    let (mut a, mut b) = (fresh.doc.get_heads(), replica.doc.get_heads());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    server.stop().await;
}

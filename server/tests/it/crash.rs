//! Crashes and shutdowns of the real binary under load.
//!
//! Writers (rapporteurs of three groups, two per group) edit as fast as the server answers;
//! the harness kills the server with SIGKILL at a random moment, restarts it on the same
//! database, and the writers reconnect — sometimes with the sync state a client would have
//! saved, sometimes afresh — and go on. Every writer records which of its own changes it saw
//! acknowledged: a change is acknowledged once the heads of a sync message from the server
//! include it. At the end every acknowledged change must be in the stored document, and the
//! stored document must equal what all writers converge to.
//!
//! `RAPPORTEUR_CRASH_CYCLES` sets the number of kills (`scripts/soak.sh` runs many); the normal
//! test run does a few. The seed (`RAPPORTEUR_CRASH_SEED`) makes the edit mix and the kill
//! moments repeatable up to the scheduler.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ChangeHash, ReadDoc, ROOT};
use ciborium::Value;
use tokio::process::Child;
use tokio::sync::watch;

use crate::durability::{cli, get_json, spawn};
use crate::forged::add_bullet;
use crate::support::*;

/// A small, seedable generator: the harness needs repeatable choices, not good randomness.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One editor's client: its copy of the document survives server crashes, as a browser's
/// IndexedDB copy does.
pub struct Writer {
    pub name: String,
    pub token: String,
    pub person: String,
    pub doc_id: String,
    pub doc: Automerge,
    pub state: sync::State,
    /// The server's heads as of its last sync message.
    pub server_heads: Vec<ChangeHash>,
    /// Own changes not yet seen acknowledged.
    pub pending: Vec<ChangeHash>,
    pub acked: HashSet<ChangeHash>,
    pub made: u64,
    /// Counts acknowledgements for the harness during a session.
    acks: Option<std::sync::Arc<watch::Sender<u64>>>,
    section: usize,
    own_bullets: Vec<String>,
    rng: SplitMix,
}

impl Writer {
    fn new(name: String, token: String, person: String, doc_id: String, seed: u64) -> Self {
        Self {
            section: (seed % 3) as usize,
            name,
            token,
            person,
            doc_id,
            doc: Automerge::new(),
            state: sync::State::new(),
            server_heads: Vec::new(),
            pending: Vec::new(),
            acked: HashSet::new(),
            made: 0,
            acks: None,
            own_bullets: Vec::new(),
            rng: SplitMix::new(seed),
        }
    }

    /// One edit: a new bullet now and then, otherwise typing into one of its bullets.
    fn edit(&mut self) {
        let before = self.doc.get_heads();
        self.made += 1;
        let n = self.made;
        let bullets = section_bullets(&self.doc, self.section);
        if self.own_bullets.len() < 4 || (self.rng.below(8) == 0 && bullets < 150) {
            let id = format!("{}-{n}", self.name);
            add_bullet_in(&mut self.doc, self.section, &id, &self.person);
            self.own_bullets.push(id);
        } else {
            let pick = self.rng.below(self.own_bullets.len() as u64) as usize;
            let id = self.own_bullets[pick].clone();
            let word = format!(" w{n}");
            type_into(&mut self.doc, self.section, &id, &word);
        }
        for change in self.doc.get_changes(&before) {
            self.pending.push(change.hash());
        }
    }

    async fn push(&mut self, peer: &mut Peer) {
        if let Some(msg) = self.doc.generate_sync_message(&mut self.state) {
            peer.send_sync(&self.doc_id, "sync", msg.encode()).await;
        }
    }

    /// Takes in a message from the server; returns false if it was an `error`.
    fn receive(&mut self, m: &Value) -> bool {
        match field_text(m, "type") {
            Some("sync") if field_text(m, "documentId") == Some(&self.doc_id) => {
                let Some(Value::Bytes(data)) = field(m, "data") else {
                    panic!("sync without data")
                };
                let msg = sync::Message::decode(data).unwrap();
                self.server_heads = msg.heads.clone();
                self.doc.receive_sync_message(&mut self.state, msg).unwrap();
                self.note_acknowledged();
                true
            }
            Some("error") => {
                eprintln!("{}: server error {:?}", self.name, field_text(m, "message"));
                false
            }
            _ => true,
        }
    }

    /// Moves own changes that the server's heads cover from `pending` to `acked`.
    fn note_acknowledged(&mut self) {
        let heads = self.server_heads.clone();
        if heads
            .iter()
            .any(|h| self.doc.get_change_by_hash(h).is_none())
        {
            return; // the rest arrives with a later message
        }
        let uncovered: HashSet<ChangeHash> = self
            .doc
            .get_changes(&heads)
            .iter()
            .map(|c| c.hash())
            .collect();
        let acked = &mut self.acked;
        let before = self.pending.len();
        self.pending.retain(|h| {
            if uncovered.contains(h) {
                true
            } else {
                acked.insert(*h);
                false
            }
        });
        let newly = (before - self.pending.len()) as u64;
        if let (Some(tx), true) = (&self.acks, newly > 0) {
            tx.send_modify(|n| *n += newly);
        }
    }

    /// A new connection, with a fresh sync state or the one a client saves between sessions.
    fn reconnecting(&mut self) {
        // A new connection has heard nothing from this server yet.
        self.server_heads.clear();
        self.state = if self.rng.below(2) == 0 {
            sync::State::new()
        } else {
            sync::State::decode(&self.state.encode()).unwrap()
        };
    }

    /// Edits until `stop` or until the server goes away.
    async fn write(mut self, url: String, mut stop: watch::Receiver<bool>) -> Self {
        self.reconnecting();
        let Some(mut peer) = Peer::try_join(&url).await else {
            return self;
        };
        if self.doc.get_heads().is_empty() {
            // First session: fetch the document before editing it.
            self.push(&mut peer).await;
            while self.doc.get_heads().is_empty() {
                match peer.try_next(WAIT).await {
                    Some(Some(m)) => {
                        self.receive(&m);
                        self.push(&mut peer).await;
                    }
                    _ => return self,
                }
            }
        }
        // Bounded: a kill always comes long before this many edits.
        for _ in 0..100_000 {
            if *stop.borrow() {
                break;
            }
            self.edit();
            self.push(&mut peer).await;
            tokio::select! {
                next = peer.try_next(Duration::from_secs(2)) => match next {
                    Some(Some(m)) => {
                        assert!(self.receive(&m), "{}: a valid edit was refused", self.name);
                        self.push(&mut peer).await;
                    }
                    Some(None) => return self, // the server died
                    None => {} // nothing to answer yet: edit on
                },
                _ = stop.changed() => break,
            }
        }
        self
    }

    /// Syncs until the server holds everything this client has and vice versa.
    async fn converge(&mut self, url: &str) {
        self.reconnecting();
        let mut peer = Peer::try_join(url).await.expect("the server is up");
        self.push(&mut peer).await;
        let deadline = tokio::time::Instant::now() + WAIT * 3;
        loop {
            let mut mine = self.doc.get_heads();
            let mut theirs = self.server_heads.clone();
            mine.sort();
            theirs.sort();
            if mine == theirs && self.pending.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: did not converge",
                self.name
            );
            match peer.try_next(WAIT).await {
                Some(Some(m)) => {
                    assert!(self.receive(&m), "{}: refused while converging", self.name);
                    self.push(&mut peer).await;
                }
                Some(None) => panic!("{}: connection closed while converging", self.name),
                None => panic!("{}: the server stopped answering", self.name),
            }
        }
    }
}

fn section_list(doc: &Automerge, section: usize) -> automerge::ObjId {
    let sections = doc.get(ROOT, "sections").unwrap().unwrap().1;
    let s = doc.get(&sections, section).unwrap().unwrap().1;
    doc.get(&s, "bullets").unwrap().unwrap().1
}

fn section_bullets(doc: &Automerge, section: usize) -> usize {
    doc.length(section_list(doc, section))
}

fn add_bullet_in(doc: &mut Automerge, section: usize, id: &str, person: &str) {
    if section == 0 {
        add_bullet(doc, id, &format!("Commitment {id}"), person, "proposed");
        return;
    }
    // Same shape as `add_bullet`, in another section.
    let list = section_list(doc, section);
    doc.transact::<_, _, AutomergeError>(|tx| {
        let at = tx.length(&list);
        let b = tx.insert_object(&list, at, automerge::ObjType::Map)?;
        tx.put(&b, "id", id)?;
        let t = tx.put_object(&b, "text", automerge::ObjType::Text)?;
        tx.splice_text(&t, 0, 0, &format!("Means {id}"))?;
        tx.put_object(&b, "proposedBy", automerge::ObjType::List)?;
        tx.put_object(&b, "tags", automerge::ObjType::List)?;
        tx.put(&b, "status", "proposed")?;
        tx.put(&b, "createdBy", person)?;
        tx.put(&b, "createdAt", 1_512_486_000_000_i64)?;
        Ok(())
    })
    .unwrap();
}

/// Types `word` at the end of bullet `id`, trimming the start when it grows long.
fn type_into(doc: &mut Automerge, section: usize, id: &str, word: &str) {
    let list = section_list(doc, section);
    let found = (0..doc.length(&list)).find_map(|i| {
        let b = doc.get(&list, i).ok()??.1;
        let bid = doc.get(&b, "id").ok()??.0.as_str()?.to_owned();
        (bid == id).then_some(b)
    });
    let Some(bullet) = found else { return };
    let text = doc.get(&bullet, "text").unwrap().unwrap().1;
    doc.transact::<_, _, AutomergeError>(|tx| {
        let len = tx.length(&text);
        tx.splice_text(&text, len, 0, word)?;
        if len > 1_000 {
            tx.splice_text(&text, 0, 200, "")?;
        }
        Ok(())
    })
    .unwrap();
}

/// Everything about one group as stored in the database, loaded from its chunks.
async fn stored_doc(dir: &Path, doc_id: &str) -> Automerge {
    let url = format!("sqlite://{}", dir.join("r.db").display());
    let store = rapporteur::store::open(&url).await.unwrap();
    let id = rapporteur::ids::DocId::parse(doc_id).unwrap();
    let mut doc = Automerge::new();
    for chunk in store.load_chunks(&id).await.unwrap() {
        doc.load_incremental(&chunk.data).unwrap();
    }
    doc
}

/// Makes the writers: two rapporteurs for each of groups 1 to 3.
async fn writers(dir: &Path, addr: &str, seed: u64) -> Vec<Writer> {
    let mut out = Vec::new();
    for group in 1..=3u32 {
        for k in 0..2u64 {
            let url = cli(
                dir,
                &[
                    "invite",
                    "--meeting",
                    SLUG,
                    "--role",
                    "rapporteur",
                    "--group",
                    &group.to_string(),
                ],
            );
            let token = url.trim().rsplit('/').next().unwrap().to_owned();
            let me = get_json(addr, "/api/me", &token).await;
            let person = me["person"]["id"].as_str().unwrap().to_owned();
            let meeting = get_json(addr, &format!("/api/meetings/{SLUG}"), &token).await;
            let doc = meeting["groups"][group as usize - 1]["outcomeDocUrl"]
                .as_str()
                .unwrap()
                .trim_start_matches("automerge:")
                .to_owned();
            let name = format!("g{group}w{k}");
            let seed = seed.wrapping_mul(31).wrapping_add(group as u64 * 2 + k);
            out.push(Writer::new(name, token, person, doc, seed));
        }
    }
    out
}

/// Runs the writers against a server until `end` says so; returns them. `end` gets the count
/// of acknowledgements in this session, to wait for editing to be under way.
async fn session<F: std::future::Future<Output = ()>>(
    writers: Vec<Writer>,
    addr: &str,
    end: impl FnOnce(watch::Receiver<u64>) -> F,
) -> Vec<Writer> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ack_tx, ack_rx) = watch::channel(0u64);
    let ack_tx = std::sync::Arc::new(ack_tx);
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|mut w| {
            w.acks = Some(ack_tx.clone());
            let url = format!("ws://{addr}/sync?token={}", w.token);
            tokio::spawn(w.write(url, stop_rx.clone()))
        })
        .collect();
    end(ack_rx).await;
    let _ = stop_tx.send(true);
    let mut out = Vec::new();
    for task in tasks {
        let mut w = tokio::time::timeout(WAIT * 3, task)
            .await
            .expect("a writer did not stop")
            .unwrap();
        w.acks = None;
        out.push(w);
    }
    out
}

/// Ends by SIGTERM and waits for the process to exit; returns whether it exited cleanly.
async fn terminate(mut child: Child) -> bool {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::timeout(WAIT * 3, child.wait())
        .await
        .expect("the server did not stop after SIGTERM")
        .unwrap()
        .success()
}

/// After the last session: all writers converge on a running server, which then stops; the
/// stored documents must hold every acknowledged change and equal the writers' copies.
async fn check_final(dir: &Path, writers: &mut [Writer]) -> (u64, u64) {
    let (child, addr) = spawn(dir).await;
    // Twice: the first pass brings every client's changes to the server, the second brings
    // the others' changes to the clients that went first.
    for _ in 0..2 {
        for w in writers.iter_mut() {
            w.converge(&format!("ws://{addr}/sync?token={}", w.token))
                .await;
        }
    }
    assert!(terminate(child).await, "unclean exit after SIGTERM");
    let mut acked = 0;
    let mut made = 0;
    for w in writers.iter() {
        let stored = stored_doc(dir, &w.doc_id).await;
        for h in &w.acked {
            assert!(
                stored.get_change_by_hash(h).is_some(),
                "{}: an acknowledged change is not stored",
                w.name
            );
        }
        let mut a = stored.get_heads();
        let mut b = w.doc.get_heads();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{}: the stored document differs", w.name);
        assert_eq!(
            rapporteur::docs::json::document_json(&stored, None),
            rapporteur::docs::json::document_json(&w.doc, None)
        );
        acked += w.acked.len() as u64;
        made += w.made;
    }
    (acked, made)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_edits_survive_repeated_sigkill() {
    let cycles = env_u64("RAPPORTEUR_CRASH_CYCLES", 4);
    let seed = env_u64("RAPPORTEUR_CRASH_SEED", 7);
    let mut rng = SplitMix::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = spawn(dir.path()).await;
    let mut ws = writers(dir.path(), &addr, seed).await;
    let mut child = Some((child, addr));
    // Own changes not yet acknowledged when the server died: each must be resent and stored.
    let mut in_flight_at_kills: HashSet<ChangeHash> = HashSet::new();
    for cycle in 0..cycles {
        let (mut server, addr) = match child.take() {
            Some(c) => c,
            None => spawn(dir.path()).await,
        };
        // A random moment in the middle of heavy editing: once the session's first edit is
        // acknowledged, so that every kill hits writers at work. Every fourth kill does not wait
        // and may land while the writers reconnect and resync.
        let after = Duration::from_millis(rng.below(400));
        let wait_for_editing = cycle % 4 != 3;
        ws = session(ws, &addr, |mut acks| async move {
            if wait_for_editing {
                tokio::time::timeout(WAIT * 3, acks.wait_for(|n| *n > 0))
                    .await
                    .expect("no edit was acknowledged in a session")
                    .unwrap();
            }
            tokio::time::sleep(after).await;
            server.kill().await.unwrap(); // SIGKILL
        })
        .await;
        in_flight_at_kills.extend(ws.iter().flat_map(|w| w.pending.iter().copied()));
        if std::env::var("IT_DEBUG").is_ok() {
            let acked: usize = ws.iter().map(|w| w.acked.len()).sum();
            eprintln!("cycle {cycle}: killed after {after:?}, {acked} acknowledged so far");
        }
    }
    let acked_between_kills: usize = ws.iter().map(|w| w.acked.len()).sum();
    let (acked, made) = check_final(dir.path(), &mut ws).await;
    assert!(
        acked_between_kills > 0,
        "no edit was acknowledged before a kill: the test tested nothing"
    );
    println!(
        "crash cycles: {cycles}, edits made: {made}, acknowledged between kills: \
         {acked_between_kills}, unacknowledged at a kill and resent later: {}, \
         acknowledged in the end: {acked}, lost: 0",
        in_flight_at_kills.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_heavy_editing_keeps_everything_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = spawn(dir.path()).await;
    let mut ws = writers(dir.path(), &addr, 11).await;
    // Once editing is well under way, stop the server under load.
    let mut clean = false;
    let exited_cleanly = &mut clean;
    ws = session(ws, &addr, |mut acks| async move {
        tokio::time::timeout(WAIT * 3, acks.wait_for(|n| *n >= 20))
            .await
            .expect("editing never got under way")
            .unwrap();
        *exited_cleanly = terminate(child).await;
    })
    .await;
    assert!(clean, "the server did not exit cleanly on SIGTERM");
    for w in &ws {
        let stored = stored_doc(dir.path(), &w.doc_id).await;
        for h in &w.acked {
            assert!(stored.get_change_by_hash(h).is_some(), "{}: lost", w.name);
        }
    }
    // The clients reconnect to the restarted server and go on editing: one more edit each,
    // acknowledged.
    let (child, addr) = spawn(dir.path()).await;
    for w in ws.iter_mut() {
        w.edit();
        w.converge(&format!("ws://{addr}/sync?token={}", w.token))
            .await;
        assert!(w.pending.is_empty());
    }
    assert!(terminate(child).await);
    check_final(dir.path(), &mut ws).await;
}

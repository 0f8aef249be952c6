//! The two kinds of simulated people: writers, who type into a bullet of one group document,
//! and viewers, who follow every group document and the index read-only.
//!
//! A writer is a full Automerge peer (document plus `sync::State`), as the web app is. A viewer
//! fetches each document as a full peer, then keeps only the heads: a thousand viewers that
//! each apply every change to six documents would cost the generator more CPU than the server
//! under test, on the same two cores. Each viewer still receives and decodes every sync message
//! addressed to it and answers it with its new heads, as a real client does, so the server does
//! exactly the work it would do for real viewers; the change chunks are parsed once per
//! document (they are the same bytes for every viewer) to learn their hash and dependencies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::sync::{self, BloomFilter, Have, MessageVersion, SyncDoc};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ReadDoc, ROOT};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::receive::receive_sync_message;
use crate::stats::{Counters, Latency};
use crate::wire::{self, Conn, Incoming};

/// Where the run is. Every client watches it.
#[derive(Clone)]
pub enum Phase {
    /// Connecting and fetching.
    Setup,
    /// Writers type until `until`.
    Run { until: Instant },
    /// Writers are done; viewers stop once their heads equal `targets` (per document, in the
    /// order of `Run::docs`) or at `until`.
    Drain {
        targets: Arc<Vec<Vec<ChangeHash>>>,
        until: Instant,
    },
}

struct Applied {
    hash: ChangeHash,
    deps: Vec<ChangeHash>,
    sent: Option<Instant>,
}

/// Splits back-to-back storage chunks: magic (4 bytes), checksum (4), type (1), LEB128
/// length, body.
fn split_chunks(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut len: u64 = 0;
        let mut at = 9;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(at)?;
            at += 1;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        out.push(bytes.get(..end)?);
        bytes = &bytes[end..];
    }
    Some(out)
}

/// A chunk of a sync message as every viewer sees it, parsed once.
enum Parsed {
    Changes(Vec<Applied>),
    /// A whole document: what automerge sends instead of the changes when they are more
    /// than a third of the document (a viewer that fell behind, or a young document).
    Doc {
        // std Mutex: used for reads without awaiting.
        doc: Box<Mutex<Automerge>>,
        heads: Vec<ChangeHash>,
    },
}

pub struct DocState {
    pub id: String,
    /// When each edit left its writer, by change hash.
    // std Mutex: held for a map operation only, never across an await.
    sent: Mutex<HashMap<ChangeHash, Instant>>,
    parsed: Mutex<HashMap<Vec<u8>, Arc<Parsed>>>,
}

impl DocState {
    pub fn new(id: String) -> Self {
        Self {
            id,
            sent: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::new()),
        }
    }

    fn parse(&self, chunk: &[u8]) -> Option<Arc<Parsed>> {
        if let Some(p) = self.parsed.lock().expect("parsed lock").get(chunk) {
            return Some(p.clone());
        }
        let p = if chunk.get(8) == Some(&0) {
            let doc = Automerge::load(chunk).ok()?;
            let mut heads = doc.get_heads();
            heads.sort();
            Parsed::Doc {
                doc: Box::new(Mutex::new(doc)),
                heads,
            }
        } else {
            // One or more change chunks back to back (a V2 message packs them into one).
            let mut changes = Vec::new();
            for piece in split_chunks(chunk)? {
                let change = Change::from_bytes(piece.to_vec()).ok()?;
                let hash = change.hash();
                changes.push(Applied {
                    hash,
                    deps: change.deps().to_vec(),
                    sent: self.sent_at(&hash),
                });
            }
            Parsed::Changes(changes)
        };
        let p = Arc::new(p);
        self.parsed
            .lock()
            .expect("parsed lock")
            .insert(chunk.to_vec(), p.clone());
        Some(p)
    }

    fn sent_at(&self, hash: &ChangeHash) -> Option<Instant> {
        self.sent.lock().expect("sent lock").get(hash).copied()
    }
}

pub struct Run {
    pub counters: Counters,
    pub latency: Latency,
    /// Group documents first, then (if any) the index.
    pub docs: Vec<DocState>,
    pub phase: watch::Sender<Phase>,
}

/// One writer's result.
pub struct WriterEnd {
    pub doc: usize,
    pub heads: Vec<ChangeHash>,
}

struct Replica {
    doc: Automerge,
    state: sync::State,
}

impl Replica {
    fn new() -> Self {
        Self {
            doc: Automerge::new(),
            state: sync::State::new(),
        }
    }

    /// Sends what the sync protocol says to send, if anything; returns whether it sent.
    async fn push(
        &mut self,
        conn: &mut Conn,
        doc_id: &str,
        first_kind: &str,
    ) -> anyhow::Result<bool> {
        if let Some(msg) = self.doc.generate_sync_message(&mut self.state) {
            let kind = if self.doc.get_heads().is_empty() {
                first_kind
            } else {
                "sync"
            };
            let frame = conn.sync_frame(kind, doc_id, msg.encode());
            conn.send(frame).await?;
            return Ok(true);
        }
        Ok(false)
    }

    fn receive(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let msg = sync::Message::decode(data)?;
        receive_sync_message(&mut self.doc, &mut self.state, msg)?;
        Ok(())
    }

    /// Whether the server has acknowledged everything this replica holds.
    fn acked(&self) -> bool {
        let heads = self.doc.get_heads();
        !heads.is_empty() && self.state.their_heads.as_ref() == Some(&heads)
    }
}

/// Syncs `replica` on `conn` until `done` holds, for at most `limit`.
async fn sync_until(
    conn: &mut Conn,
    replica: &mut Replica,
    doc_id: &str,
    first_kind: &str,
    limit: Duration,
    done: impl Fn(&Replica) -> bool,
) -> anyhow::Result<()> {
    replica.push(conn, doc_id, first_kind).await?;
    let deadline = Instant::now() + limit;
    while !done(replica) {
        let frame = tokio::time::timeout_at(deadline, conn.next())
            .await
            .map_err(|_| anyhow::anyhow!("document {doc_id} did not sync in time"))?
            .ok_or_else(|| anyhow::anyhow!("connection closed while syncing {doc_id}"))?;
        match wire::decode(&frame) {
            Incoming::Sync { doc, data } if doc == doc_id => {
                replica.receive(&data)?;
                replica.push(conn, doc_id, first_kind).await?;
            }
            Incoming::Error(e) => anyhow::bail!("server error: {e}"),
            _ => {}
        }
    }
    Ok(())
}

/// Creates a document on a server that accepts new documents from peers (the stock server).
pub async fn create(url: &str, id: &str, doc: Automerge) -> anyhow::Result<()> {
    let mut conn = Conn::join(url).await?;
    let mut replica = Replica {
        doc,
        state: sync::State::new(),
    };
    // `sync`, not `request`: we hold the document and offer it.
    sync_until(
        &mut conn,
        &mut replica,
        id,
        "sync",
        Duration::from_secs(30),
        Replica::acked,
    )
    .await
}

/// Fetches a document's current heads with a fresh full peer.
pub async fn fetch_heads(url: &str, id: &str) -> anyhow::Result<Vec<ChangeHash>> {
    let mut conn = Conn::join(url).await?;
    let mut replica = Replica::new();
    sync_until(
        &mut conn,
        &mut replica,
        id,
        "request",
        Duration::from_secs(30),
        Replica::acked,
    )
    .await?;
    Ok(replica.doc.get_heads())
}

pub struct WriterSpec {
    pub url: String,
    pub doc: usize,
    pub person: String,
    pub rate: f64,
    pub seed: u64,
}

/// Connects, adds a bullet, reports ready, types at `rate` during `Phase::Run`, then waits
/// until the server acknowledged everything.
pub async fn writer(
    run: Arc<Run>,
    spec: WriterSpec,
    ready: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<WriterEnd> {
    let doc_id = run.docs[spec.doc].id.clone();
    let mut conn = Conn::join(&spec.url).await?;
    let mut r = Replica::new();
    let has_sections =
        |r: &Replica| r.acked() && r.doc.get(ROOT, "sections").ok().flatten().is_some();
    sync_until(
        &mut conn,
        &mut r,
        &doc_id,
        "request",
        Duration::from_secs(60),
        has_sections,
    )
    .await?;
    let text = crate::shape::add_bullet(&mut r.doc, &spec.person)?;
    sync_until(
        &mut conn,
        &mut r,
        &doc_id,
        "request",
        Duration::from_secs(60),
        Replica::acked,
    )
    .await?;
    let _ = ready.send(());

    // Keep reading while the viewers connect: servers ping idle peers and drop those that do
    // not answer (the stock server after a few seconds), and answers need reads.
    let mut phase = run.phase.subscribe();
    let until = loop {
        if let Phase::Run { until } = &*phase.borrow_and_update() {
            break *until;
        }
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    anyhow::bail!("the run ended before it started");
                }
            }
            frame = conn.next() => {
                let Some(frame) = frame else { anyhow::bail!("connection closed before the run") };
                if let Incoming::Sync { doc, data } = wire::decode(&frame) {
                    if doc == doc_id {
                        r.receive(&data)?;
                        r.push(&mut conn, &doc_id, "sync").await?;
                    }
                }
            }
        }
    };
    let actor = r.doc.get_actor().clone();
    let mut typist = Typist::new(text, spec.seed);
    let period = Duration::from_secs_f64(1.0 / spec.rate.max(0.001));
    let mut tick =
        tokio::time::interval_at(Instant::now() + period.mul_f64(typist.jitter()), period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut edits = 0u64;
    let mut accepted = 0u64;
    let mut reported = false;
    loop {
        let typing = Instant::now() < until;
        if !typing && !reported && pending(&r.doc, &r.state, &actor) == Some(0) {
            // Everything this writer typed is acknowledged: the run can fetch the final heads.
            reported = true;
            run.counters.writers_done.fetch_add(1, Relaxed);
        }
        // Then stay, receiving the others' last changes, until the heads are the server's
        // final ones.
        let drain_until = match &*phase.borrow() {
            Phase::Drain { targets, until } => {
                let mut heads = r.doc.get_heads();
                heads.sort();
                if heads == targets[spec.doc] {
                    break;
                }
                Some(*until)
            }
            _ => None,
        };
        tokio::select! {
            _ = tick.tick(), if typing => {
                let before = r.doc.get_heads();
                typist.edit(&mut r.doc)?;
                // The new change is the one new head (cheaper than building the change).
                let now = Instant::now();
                for hash in r.doc.get_heads().into_iter().filter(|h| !before.contains(h)) {
                    run.docs[spec.doc].sent.lock().expect("sent lock").insert(hash, now);
                }
                edits += 1;
                run.counters.edits_sent.fetch_add(1, Relaxed);
                if r.push(&mut conn, &doc_id, "sync").await? {
                    run.counters.frames_from_writers.fetch_add(1, Relaxed);
                }
            }
            frame = conn.next() => {
                let Some(frame) = frame else { anyhow::bail!("connection closed") };
                run.counters.frames_to_writers.fetch_add(1, Relaxed);
                match wire::decode(&frame) {
                    Incoming::Sync { doc, data } if doc == doc_id => {
                        r.receive(&data)?;
                        if r.push(&mut conn, &doc_id, "sync").await? {
                            run.counters.frames_from_writers.fetch_add(1, Relaxed);
                        }
                        if let Some(p) = pending(&r.doc, &r.state, &actor) {
                            let now = edits.saturating_sub(p);
                            if now > accepted {
                                run.counters.edits_accepted.fetch_add(now - accepted, Relaxed);
                                accepted = now;
                            }
                        }
                    }
                    Incoming::Error(e) => {
                        run.counters.errors.fetch_add(1, Relaxed);
                        eprintln!("writer on {doc_id}: server error: {e}");
                    }
                    _ => {}
                }
            }
            _ = phase.changed() => {}
            _ = sleep_or_never(drain_until) => break,
            // Typing over and not acknowledged within a minute: give up, counted as lost.
            _ = tokio::time::sleep_until(until + Duration::from_secs(60)), if !typing => break,
        }
    }
    Ok(WriterEnd {
        doc: spec.doc,
        heads: r.doc.get_heads(),
    })
}

use std::sync::atomic::Ordering::Relaxed;

async fn sleep_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How many of this writer's changes the server has not acknowledged, if its heads are known.
///
/// Reads change metadata only: building the changes themselves, after every frame of every
/// writer, showed in the generator's profile.
fn pending(doc: &Automerge, state: &sync::State, actor: &ActorId) -> Option<u64> {
    let theirs = state.their_heads.as_ref()?;
    if theirs
        .iter()
        .any(|h| doc.get_change_meta_by_hash(h).is_none())
    {
        return None;
    }
    Some(
        doc.get_changes_meta(theirs)
            .iter()
            .filter(|c| c.actor.as_ref() == actor)
            .count() as u64,
    )
}

/// Types like a person: a few characters at a time, and deletes back once the bullet is long,
/// so that it stays within the schema's 5,000 characters however long the run.
struct Typist {
    text: ObjId,
    rng: u64,
    deleting: bool,
}

impl Typist {
    fn new(text: ObjId, seed: u64) -> Self {
        Self {
            text,
            rng: seed | 1,
            deleting: false,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64: deterministic per writer, no dependency.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn jitter(&mut self) -> f64 {
        (self.next() % 1000) as f64 / 1000.0
    }

    fn edit(&mut self, doc: &mut Automerge) -> anyhow::Result<()> {
        use automerge::transaction::Transactable;
        let len = doc.length(&self.text);
        if len > 400 {
            self.deleting = true;
        } else if len < 40 {
            self.deleting = false;
        }
        let n = 1 + (self.next() % 4) as usize;
        let mut tx = doc.transaction();
        if self.deleting {
            tx.splice_text(&self.text, len - n, n as isize, "")?;
        } else {
            const WORDS: [&str; 6] = ["mig", "rat", "ion ", "pa", "th", "ways "];
            let word = WORDS[(self.next() % WORDS.len() as u64) as usize];
            let at = len.saturating_sub((self.next() % 3) as usize);
            tx.splice_text(&self.text, at, 0, word)?;
        }
        tx.commit();
        Ok(())
    }
}

/// What a viewer holds of one document.
enum Follow {
    /// Fetching: a full peer until it has caught up with the server.
    Full(Box<Replica>),
    /// Caught up: only the heads, advanced by each change received.
    Light(Vec<ChangeHash>),
}

/// Most answers a viewer queues before writing them out (see `viewer`).
const ACKS_PER_FLUSH: usize = 16;

/// Follows every document read-only until the drain phase ends; returns how many of its
/// documents ended with heads other than the server's.
///
/// The answers to frames that arrived together go out in one write, once no further frame is
/// waiting (or `ACKS_PER_FLUSH` are queued): each answer is still its own WebSocket message,
/// sent as soon as the viewer has nothing else to read. A write per answer cost this process a
/// system call per answer, on the two cores it shares with the server, and its own backlog
/// showed as the server's latency.
/// `permit` bounds how many viewers connect at once; it is released once this one caught up.
pub async fn viewer(
    run: Arc<Run>,
    url: String,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> anyhow::Result<usize> {
    let mut permit = Some(permit);
    let mut conn = Conn::join(&url).await?;
    let mut follows: Vec<Follow> = Vec::with_capacity(run.docs.len());
    let index: HashMap<String, usize> = run
        .docs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.clone(), i))
        .collect();
    for d in &run.docs {
        let mut r = Box::new(Replica::new());
        r.push(&mut conn, &d.id, "request").await?;
        follows.push(Follow::Full(r));
    }
    let mut ready = false;
    let mut unflushed = 0;
    let mut phase = run.phase.subscribe();
    let setup_deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let current = phase.borrow_and_update().clone();
        let until = match &current {
            Phase::Drain { targets, until } => {
                let done = follows
                    .iter()
                    .zip(targets.iter())
                    .all(|(f, t)| matches!(f, Follow::Light(h) if h == t));
                if done {
                    return Ok(0);
                }
                *until
            }
            Phase::Setup => setup_deadline,
            Phase::Run { until } => *until + Duration::from_secs(600),
        };
        tokio::select! {
            biased;
            frame = wire::next_binary(&mut conn.stream) => {
                let Some(frame) = frame else { anyhow::bail!("connection closed") };
                run.counters.frames_to_viewers.fetch_add(1, Relaxed);
                let Incoming::Sync { doc, data } = wire::decode(&frame) else {
                    if let Incoming::Error(e) = wire::decode(&frame) {
                        run.counters.errors.fetch_add(1, Relaxed);
                        eprintln!("viewer: server error: {e}");
                    }
                    continue;
                };
                let Some(&i) = index.get(&doc) else { continue };
                let reply = match &mut follows[i] {
                    Follow::Full(r) => {
                        r.receive(&data)?;
                        r.push(&mut conn, &doc, "request").await?;
                        if r.acked() {
                            let mut heads = r.doc.get_heads();
                            heads.sort();
                            follows[i] = Follow::Light(heads);
                        }
                        None
                    }
                    Follow::Light(heads) => advance(&run, i, heads, &data),
                };
                if let Some(reply) = reply {
                    let frame = conn.sync_frame("sync", &doc, reply);
                    conn.feed(frame).await?;
                    unflushed += 1;
                    if unflushed >= ACKS_PER_FLUSH {
                        conn.flush().await?;
                        unflushed = 0;
                    }
                    run.counters.acks_sent.fetch_add(1, Relaxed);
                }
                if !ready && follows.iter().all(|f| matches!(f, Follow::Light(_))) {
                    ready = true;
                    permit.take();
                    run.counters.viewers_ready.fetch_add(1, Relaxed);
                }
            }
            flushed = futures_util::SinkExt::flush(&mut conn.sink), if unflushed > 0 => {
                flushed?;
                unflushed = 0;
            }
            r = phase.changed() => { if r.is_err() { break; } }
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    let diverged = match &*phase.borrow() {
        Phase::Drain { targets, .. } => follows
            .iter()
            .zip(targets.iter())
            .filter(|(f, t)| !matches!(f, Follow::Light(h) if h == *t))
            .count(),
        _ => follows.len(),
    };
    Ok(diverged)
}

/// Applies a sync message to a caught-up viewer's heads and returns its answer, if any.
fn advance(run: &Run, i: usize, heads: &mut Vec<ChangeHash>, data: &[u8]) -> Option<Vec<u8>> {
    let msg = sync::Message::decode(data).ok()?;
    if msg.changes.is_empty() {
        return None;
    }
    let now = Instant::now();
    for chunk in msg.changes.iter() {
        let Some(p) = run.docs[i].parse(chunk) else {
            // Neither a change nor a document: the final comparison of heads will show this
            // viewer as diverged.
            run.counters.errors.fetch_add(1, Relaxed);
            continue;
        };
        match &*p {
            Parsed::Changes(changes) => {
                for c in changes {
                    run.counters.changes_to_viewers.fetch_add(1, Relaxed);
                    if let Some(sent) = c.sent {
                        run.latency.record(now.saturating_duration_since(sent));
                    }
                    if heads.contains(&c.hash) {
                        continue;
                    }
                    heads.retain(|h| !c.deps.contains(h));
                    heads.push(c.hash);
                }
            }
            Parsed::Doc { doc, heads: theirs } => {
                // What this viewer had not seen yet: the changes after its heads.
                let new: Vec<ChangeHash> = {
                    let doc = doc.lock().expect("doc lock");
                    let base: Vec<ChangeHash> =
                        if heads.iter().all(|h| doc.get_change_by_hash(h).is_some()) {
                            heads.clone()
                        } else {
                            Vec::new()
                        };
                    doc.get_changes(&base).iter().map(|c| c.hash()).collect()
                };
                for hash in &new {
                    run.counters.changes_to_viewers.fetch_add(1, Relaxed);
                    if let Some(sent) = run.docs[i].sent_at(hash) {
                        run.latency.record(now.saturating_duration_since(sent));
                    }
                }
                heads.clone_from(theirs);
            }
        }
    }
    heads.sort();
    // What a client answers after applying changes: its new heads, and that it has everything
    // up to them.
    let ack = sync::Message {
        heads: heads.clone(),
        need: Vec::new(),
        have: vec![Have {
            last_sync: heads.clone(),
            bloom: BloomFilter::default(),
        }],
        changes: sync::ChunkList::empty(),
        flags: None,
        version: MessageVersion::V1,
    };
    Some(ack.encode())
}

//! One document's actor: it owns the `Automerge` document and the sync state of every peer
//! that follows it, and is the only code that changes either.
//!
//! The actor drains its queue in batches. Each batch:
//! 1. applies every writer's changes to a copy of the document and checks them (rights,
//!    schema); a refused message leaves no trace and its peer gets an `error`;
//! 2. stores everything accepted in one chunk through the group committer and waits until it
//!    is durable;
//! 3. only then swaps the copy in and generates the sync messages that carry the new heads,
//!    except to peers that have not answered the last changes they were sent (`Peer::awaiting`):
//!    theirs go out together when they answer.
//!
//! So no peer ever sees heads the database does not hold.
//!
//! The actor starts as soon as the document's chunks are read, while automerge loads them
//! (`Actor::warm_up`): a peer that holds nothing of the document, holds it as stored, or is
//! behind it by changes stored since its snapshot, is answered from the stored chunks
//! meanwhile, and everything else waits for the loaded document, in order.
//!
//! Authorship: the first accepted change of an Automerge actor records its writer as the
//! actor's owner (`Store::claim_actors`) before the change is stored, so every stored change of
//! a client names its person; the owners of the document's actors are kept here to refuse a
//! change written with someone else's actor (`schema::check_actors`).
//!
//! While a commit is in flight the actor goes on with what does not depend on it: viewers'
//! acknowledgements of what they were sent before (answered from the stored document), new
//! peers, presence. Messages that carry changes, and everything after them from the same peer,
//! wait in order for the next batch, which starts as soon as the commit is done; so does every
//! later message of a peer whose earlier message waits for the commit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, AutomergeError, ChangeHash, ReadDoc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::fanout::{self, settled, Classes, ReceiveMemo, Recent, SharedState, Stored};
use super::schema::{self, ActorOwners, BulletIdentity, Writer};
use super::summary_state::{self, SummaryStatePublisher};
use super::{forget, spawn_for, DocError, DocHandle, Docs, Shared};
use crate::auth::Person;
use crate::ids::{DocId, PeerId};
use crate::metrics::Metrics;
use crate::presence::{Counts, Presence, Table};
use crate::store::{now_ms, Chunk, ClusterEvent, DocKind, DocRecord, GroupState, Store};
use crate::sync::chunks;
use crate::sync::protocol::{check_sync_message, ServerMessage, SyncFrame};

/// Largest `ephemeral` payload relayed.
const MAX_EPHEMERAL_BYTES: usize = 16 * 1024;
/// Bytes of changes that may wait for their dependencies before they are dropped.
const MAX_WAITING_BYTES: usize = 4 << 20;
/// Operations above which a message is checked off the async workers (about 30 ms of work).
const HEAVY_ROWS: u64 = 10_000;
/// Most commands handled in one batch. Large enough to take every viewer's acknowledgement of
/// the previous fan-out together with the writers' next changes: each batch with changes waits
/// for one durable commit, so a small batch turns a thousand acknowledgements into several
/// commits' worth of waiting for the writers queued behind them.
const MAX_BATCH: usize = 8192;
/// Commands queued per document before connections wait (backpressure on their sockets).
const QUEUE: usize = 8192;
/// Least time between two presence broadcasts on an index document.
const PRESENCE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// Longest a peer's next changes are held while the previous ones go unanswered (see
/// `Peer::awaiting`). A client answers every message that brings it changes; one that already
/// had them (from another tab, say) stays silent, and this is how late it hears of the next.
const HOLD_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a fan-out passes by peers that have not answered the changes they were sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    None,
    Unanswered,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A connection's outbound queue. Bounded: a peer that cannot keep up is disconnected (it
/// resyncs when it reconnects) rather than growing the server's memory or losing messages.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Vec<u8>>,
    close: CancellationToken,
    metrics: Arc<Metrics>,
    /// Messages bringing new changes (`send_new_changes`) since the connection last took the
    /// count (`take_new_changes`).
    new_changes: Arc<AtomicU64>,
}

impl Outbox {
    pub fn new(
        capacity: usize,
        close: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(capacity);
        let new_changes = Arc::new(AtomicU64::new(0));
        (
            Self {
                tx,
                close,
                metrics,
                new_changes,
            },
            rx,
        )
    }

    pub fn send(&self, frame: Vec<u8>) {
        self.queue(frame);
    }

    /// Sends a message that brings the peer changes up to heads of the document it was not
    /// brought before. The peer answers it, and that answer is not counted against its message
    /// rate (`sync::limits`): a viewer following busy documents answers as often as they change.
    pub fn send_new_changes(&self, frame: Vec<u8>) {
        if self.queue(frame) {
            self.new_changes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many `send_new_changes` messages went out since the last call.
    pub fn take_new_changes(&self) -> u64 {
        self.new_changes.swap(0, Ordering::Relaxed)
    }

    /// Queues a frame; returns whether it was queued.
    fn queue(&self, frame: Vec<u8>) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.metrics.messages_out.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.close.is_cancelled() {
                    self.metrics.slow_consumers.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("closing a connection that cannot keep up");
                    self.close.cancel();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A connection as the document actors see it.
pub struct PeerLink {
    /// Unique per connection in this process.
    pub conn: u64,
    pub peer_id: PeerId,
    pub person: Arc<Person>,
    pub outbox: Outbox,
}

/// A read of a document together with the owners of its actors.
pub type OwnedRead = Box<dyn FnOnce(&Automerge, &ActorOwners) + Send>;

/// A change the server makes itself (REST actions), run in the document's actor.
pub type ServerEdit = Box<dyn FnOnce(&mut Automerge) -> Result<(), AutomergeError> + Send>;

pub enum DocCommand {
    /// A `sync` or `request` message: the first one makes the connection a peer of the document.
    Sync {
        link: Arc<PeerLink>,
        access: Access,
        data: Vec<u8>,
    },
    Ephemeral {
        link: Arc<PeerLink>,
        access: Access,
        count: u64,
        session: String,
        data: Vec<u8>,
    },
    Leave {
        conn: u64,
    },
    Edit {
        f: ServerEdit,
        done: oneshot::Sender<Result<(), DocError>>,
    },
    Read(Box<dyn FnOnce(&Automerge) + Send>),
    /// A read that also needs the owners of the document's actors (every actor of the document
    /// has its owner here before its first change is applied).
    ReadWithOwners(OwnedRead),
    SetLocked(bool),
    /// Another node stored chunks up to `seq`: read what is new and sync it on.
    Remote {
        seq: i64,
    },
    /// An ephemeral message relayed by another node.
    RemoteEphemeral {
        sender: PeerId,
        session: String,
        count: u64,
        data: Vec<u8>,
    },
}

struct Peer {
    link: Arc<PeerLink>,
    access: Access,
    state: SharedState,
    /// Since when the last message that brought this peer changes has gone unanswered. While
    /// it has, new changes wait for the answer (or `HOLD_LIMIT`) and then go out together in one
    /// message: a peer that cannot keep up (a slow link, or a server with more viewers than
    /// cores) gets fewer, larger messages instead of a growing queue of small ones, and the
    /// server answers fewer acknowledgements. A peer that keeps up answers before the next
    /// change and is never held.
    awaiting: Option<tokio::time::Instant>,
    /// A fan-out passed this peer by while it was `awaiting`.
    behind: bool,
    /// The document's heads when a message last brought this peer new changes
    /// (`Outbox::send_new_changes`): at most one such message per heads.
    refunded_heads: Arc<Vec<ChangeHash>>,
}

impl Peer {
    fn new(link: Arc<PeerLink>, access: Access) -> Self {
        let state = match access {
            Access::Read => sync::State::new_read_only(),
            Access::Write => sync::State::new(),
        };
        Self {
            link,
            access,
            state: Arc::new(state),
            awaiting: None,
            behind: false,
            refunded_heads: Arc::default(),
        }
    }
}

struct Actor {
    shared: Arc<Shared>,
    id: DocId,
    record: Arc<DocRecord>,
    doc: Automerge,
    peers: HashMap<u64, Peer>,
    locked: bool,
    rx: mpsc::Receiver<DocCommand>,
    tx: mpsc::Sender<DocCommand>,
    /// Commands that arrived during a commit and must wait for it, in arrival order.
    deferred: VecDeque<DocCommand>,
    /// Bullet identities of `doc`, when known (outcome documents only).
    identities: Option<HashMap<String, BulletIdentity>>,
    /// Who owns each client actor of `doc`, as recorded in the store.
    owners: ActorOwners,
    /// Summary documents only: keeps the meeting index's summary entry in step.
    summary_state: Option<SummaryStatePublisher>,
    /// Hashes of refused changes: anything depending on them is refused too.
    refused: HashSet<automerge::ChangeHash>,
    /// Bytes of sync messages received while changes wait on missing dependencies.
    waiting_bytes: usize,
    /// Sequence number of the newest stored chunk this document holds.
    last_seq: i64,
    chunks_since_compact: usize,
    compacting: Arc<AtomicBool>,
    /// Index documents only: the meeting's live counts.
    presence: Option<watch::Receiver<Table>>,
    presence_due: Option<tokio::time::Instant>,
    presence_sent: Option<tokio::time::Instant>,
    /// When the earliest held peer's `HOLD_LIMIT` runs out.
    hold_due: Option<tokio::time::Instant>,
    /// The document's recent changes, for generating messages without automerge's walks.
    recent: Recent,
}

/// A document whose actor has started while automerge loads it (see `Actor::warm_up`).
struct Warming {
    loading: tokio::task::JoinHandle<Result<Automerge, DocError>>,
    /// What peers that hold nothing are answered from, if anything (`Stored::of`).
    stored: Option<Stored>,
}

/// Reads a document from the store and starts its actor, which loads it: automerge's load of
/// a long history takes a while (`Actor::warm_up`).
pub(super) async fn load(shared: Arc<Shared>, id: DocId) -> Result<DocHandle, DocError> {
    let record = shared.store.document(&id).await?.ok_or(DocError::Unknown)?;
    let chunks = shared.store.load_chunks(&id).await?;
    let chunk_count = chunks.len();
    let last_seq = chunks.last().map_or(0, |c| c.seq);
    let stored = Stored::of(&chunks, shared.config.compact_after);
    let loading = tokio::task::spawn_blocking(move || load_doc(&chunks));
    let warming = Warming { loading, stored };
    let locked = match record.kind {
        DocKind::Group(n) => shared
            .store
            .groups(&record.meeting)
            .await?
            .iter()
            .any(|g| g.number == n && g.state == GroupState::Locked),
        _ => false,
    };
    let owners = load_owners(&shared, &id).await?;
    let presence =
        (record.kind == DocKind::Index).then(|| shared.presence.subscribe(&record.meeting));
    let summary_state = (record.kind == DocKind::Summary)
        .then(|| summary_state::start(shared.clone(), &id, record.meeting.clone()));
    let record = Arc::new(record);
    let (tx, rx) = mpsc::channel(QUEUE);
    let actor = Actor {
        shared: shared.clone(),
        id: id.clone(),
        record: record.clone(),
        // Until `warm_up` has the loaded document.
        doc: Automerge::new(),
        peers: HashMap::new(),
        locked,
        rx,
        tx: tx.clone(),
        deferred: VecDeque::new(),
        identities: None,
        owners,
        summary_state,
        refused: HashSet::new(),
        waiting_bytes: 0,
        last_seq,
        chunks_since_compact: chunk_count.saturating_sub(1),
        compacting: Arc::new(AtomicBool::new(false)),
        presence,
        presence_due: None,
        hold_due: None,
        recent: Recent::default(),
        presence_sent: None,
    };
    shared
        .metrics
        .documents_loaded
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(doc = %id, chunks = chunk_count, "document read");
    spawn_for(&shared, &id, "actor", actor.run(warming));
    Ok(DocHandle { record, tx })
}

/// The recorded owners of a document's actors.
async fn load_owners(shared: &Shared, id: &DocId) -> Result<ActorOwners, DocError> {
    let mut owners = ActorOwners::new();
    for claim in shared.store.document_actors(id).await? {
        match hex::decode(&claim.actor) {
            Ok(bytes) => {
                owners.insert(automerge::ActorId::from(bytes), claim.person.0);
            }
            Err(_) => tracing::warn!(actor = %claim.actor, "ignoring a malformed actor claim"),
        }
    }
    Ok(owners)
}

/// Rebuilds a document from its chunks (a snapshot and increments, in order).
///
/// The increments are applied in one `load_incremental` call (it takes chunks back to back):
/// each call on a large document has a fixed cost, and a cold document may carry hundreds of
/// increments since its last compaction.
pub fn load_doc(chunks: &[Chunk]) -> Result<Automerge, DocError> {
    let corrupt = |e: AutomergeError| DocError::Corrupt(e.to_string());
    let Some((first, rest)) = chunks.split_first() else {
        return Ok(Automerge::new());
    };
    let mut doc = Automerge::new();
    doc.load_incremental(&first.data).map_err(corrupt)?;
    if !rest.is_empty() {
        let joined: Vec<u8> = rest.iter().flat_map(|c| c.data.iter().copied()).collect();
        doc.load_incremental(&joined).map_err(corrupt)?;
    }
    Ok(doc)
}

impl Actor {
    /// Loads, serves until unloaded or shut down, then leaves the registry. The document is
    /// left stored as it is, a snapshot and the increments since: it is not compacted on the
    /// way out, although one snapshot loads a little faster, because a device behind it by
    /// changes stored since the snapshot is answered from those increments while the document
    /// loads (`fanout::returning`), and would otherwise wait for the whole load.
    async fn run(mut self, warming: Warming) {
        if self.warm_up(warming).await {
            self.serve().await;
        }
        forget(&self.shared, &self.id, &self.tx);
        self.shared
            .metrics
            .documents_loaded
            .fetch_sub(1, Ordering::Relaxed);
        self.peers.clear();
        self.report_presence();
        tracing::debug!(doc = %self.id, "document unloaded");
    }

    /// Waits for automerge to load the document. Meanwhile a peer's first message is answered
    /// from the stored chunks at once if the peer holds nothing of it (a new device:
    /// `fanout::first_contact`), holds it as stored, or is behind it by changes stored since
    /// its snapshot (a device coming back to it: `fanout::returning`); every other command
    /// waits in order for the loaded document.
    /// Returns whether it loaded; if not, everyone waiting is told so.
    async fn warm_up(&mut self, mut warming: Warming) -> bool {
        let cancel = self.shared.cancel.clone();
        let mut early: Vec<u64> = Vec::new();
        let loaded = loop {
            // Commands first: what arrived before the load finished is answered as it would
            // have been had the load taken longer, whatever the threads' timing.
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return false,
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { return false };
                    match self.answer_from_storage(cmd, &warming) {
                        Ok(conn) => early.push(conn),
                        Err(cmd) => self.deferred.push_back(cmd),
                    }
                    // A steady stream of commands must not keep the loaded document waiting.
                    if warming.loading.is_finished() {
                        break (&mut warming.loading).await;
                    }
                }
                loaded = &mut warming.loading => break loaded,
            }
        };
        let doc = match loaded.map_err(|e| DocError::Corrupt(e.to_string())) {
            Ok(Ok(doc)) => doc,
            Ok(Err(err)) | Err(err) => {
                tracing::error!(doc = %self.id, error = %err, "could not load a document");
                self.fail_waiting(&err);
                return false;
            }
        };
        let answered_heads = warming.stored.as_ref().and_then(Stored::heads);
        let mismatched = answered_heads != Some(&doc.get_heads()[..]);
        self.doc = doc;
        if !early.is_empty() && mismatched {
            // The stored chunks hold changes automerge keeps back (their dependencies are
            // missing): those peers were sent heads the document does not have. Start their
            // exchange afresh, with a message naming the loaded heads (a peer that was sent no
            // changes would not answer otherwise); their answers say what they hold.
            tracing::warn!(doc = %self.id, "stored heads differ from the loaded document's");
            for conn in &early {
                if let Some(peer) = self.peers.get_mut(conn) {
                    let access = peer.access;
                    *peer = Peer::new(peer.link.clone(), access);
                }
            }
            self.fan_out(early.clone(), Hold::None);
        }
        tracing::debug!(doc = %self.id, early = early.len(), "document loaded");
        if let Some(publisher) = &self.summary_state {
            publisher.publish(&self.doc);
        }
        if !early.is_empty() {
            self.report_presence();
            if self.presence.is_some() {
                for conn in early {
                    self.send_presence_to(conn);
                }
            }
        }
        true
    }

    /// Answers a peer's first message from the stored chunks if it can be (`Stored::answer`);
    /// hands any other command back.
    fn answer_from_storage(
        &mut self,
        cmd: DocCommand,
        warming: &Warming,
    ) -> Result<u64, DocCommand> {
        let DocCommand::Sync { link, access, data } = cmd else {
            return Err(cmd);
        };
        let back = |link, data| DocCommand::Sync { link, access, data };
        if self.peers.contains_key(&link.conn) {
            return Err(back(link, data));
        }
        let Some(msg) = sync::Message::decode(&data)
            .ok()
            .filter(|m| check_sync_message(m).is_ok())
        else {
            return Err(back(link, data));
        };
        let Some(stored) = &warming.stored else {
            return Err(back(link, data));
        };
        let mut peer = Peer::new(link.clone(), access);
        let Some(answer) = stored.answer(&msg, Arc::make_mut(&mut peer.state)) else {
            return Err(back(link, data));
        };
        if !answer.changes.is_empty() {
            peer.awaiting = Some(tokio::time::Instant::now());
        }
        // Counted before it goes out: whoever sees the answer sees it counted.
        self.shared
            .metrics
            .answered_before_load
            .fetch_add(1, Ordering::Relaxed);
        let frame = SyncFrame::new(
            &self.shared.server.peer_id,
            self.id.as_str(),
            &answer.encode(),
        );
        link.outbox.send(frame.for_target(&link.peer_id));
        self.peers.insert(link.conn, peer);
        Ok(link.conn)
    }

    /// Tells everyone waiting for a document that could not be loaded.
    fn fail_waiting(&mut self, err: &DocError) {
        const WHY: &str = "could not be loaded";
        for peer in self.peers.values() {
            self.send_error(&peer.link, WHY);
        }
        self.rx.close();
        let mut queued: Vec<DocCommand> = self.deferred.drain(..).collect();
        while let Ok(cmd) = self.rx.try_recv() {
            queued.push(cmd);
        }
        for cmd in queued {
            match cmd {
                DocCommand::Sync { link, .. } => self.send_error(&link, WHY),
                DocCommand::Edit { done, .. } => {
                    let _ = done.send(Err(DocError::Corrupt(err.to_string())));
                }
                _ => {}
            }
        }
    }

    async fn serve(&mut self) {
        let idle = self.shared.config.idle_unload;
        let cancel = self.shared.cancel.clone();
        loop {
            if !self.deferred.is_empty() {
                let mut batch: Vec<DocCommand> = self.deferred.drain(..).collect();
                while batch.len() < MAX_BATCH {
                    match self.rx.try_recv() {
                        Ok(cmd) => batch.push(cmd),
                        Err(_) => break,
                    }
                }
                self.handle_batch(batch).await;
                continue;
            }
            let presence_due = self.presence_due;
            let hold_due = self.hold_due;
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    let mut batch = vec![cmd];
                    while batch.len() < MAX_BATCH {
                        match self.rx.try_recv() {
                            Ok(cmd) => batch.push(cmd),
                            Err(_) => break,
                        }
                    }
                    self.handle_batch(batch).await;
                }
                Ok(()) = changed(&mut self.presence) => self.schedule_presence(),
                _ = sleep_until(presence_due) => {
                    self.presence_due = None;
                    self.broadcast_presence();
                }
                _ = sleep_until(hold_due) => {
                    self.hold_due = None;
                    let behind = self.peers.iter().filter(|(_, p)| p.behind).map(|(c, _)| *c).collect();
                    self.fan_out(behind, Hold::Unanswered);
                }
                _ = tokio::time::sleep(idle), if self.peers.is_empty() => {
                    if self.try_unload() {
                        break;
                    }
                }
            }
        }
    }

    /// Leaves the registry if nothing is queued. Commands that slipped in between are handed
    /// back to the registry, which loads the document afresh (everything accepted is stored).
    fn try_unload(&mut self) -> bool {
        if !self.rx.is_empty() {
            return false;
        }
        forget(&self.shared, &self.id, &self.tx);
        self.rx.close();
        let docs = Docs {
            shared: self.shared.clone(),
        };
        while let Ok(cmd) = self.rx.try_recv() {
            let docs = docs.clone();
            let id = self.id.clone();
            spawn_for(&self.shared, &self.id, "requeue", async move {
                if let Err(e) = docs.send(&id, cmd).await {
                    tracing::warn!(error = %e, "could not requeue a command after unload");
                }
            });
        }
        true
    }

    async fn handle_batch(&mut self, batch: Vec<DocCommand>) {
        let started = Instant::now();
        let before = self.doc.get_heads();
        let mut candidate: Option<Automerge> = None;
        let mut candidate_ids = self.identities.clone();
        let mut writers: Vec<Arc<PeerLink>> = Vec::new();
        let mut edits: Vec<oneshot::Sender<Result<(), DocError>>> = Vec::new();
        let mut received: Vec<(u64, sync::Message, Vec<u8>)> = Vec::new();
        let mut new_peers: Vec<u64> = Vec::new();
        let mut peers_changed = false;
        let mut catch_up = false;

        for cmd in batch {
            match cmd {
                DocCommand::Sync { link, access, data } => {
                    let conn = link.conn;
                    if let std::collections::hash_map::Entry::Vacant(slot) = self.peers.entry(conn)
                    {
                        slot.insert(Peer::new(link.clone(), access));
                        new_peers.push(conn);
                        peers_changed = true;
                    }
                    let Ok(msg) = sync::Message::decode(&data) else {
                        self.refuse(&link, "malformed sync message");
                        continue;
                    };
                    if let Err(why) = check_sync_message(&msg) {
                        self.refuse(&link, why);
                        continue;
                    }
                    if !msg.changes.is_empty() {
                        let allowed = match (access, self.locked) {
                            (Access::Read, _) => Err("you may only read this document"),
                            (_, true) => {
                                Err("this group is locked; a co-facilitator must reopen it first")
                            }
                            _ => Ok(()),
                        };
                        if let Err(why) = allowed {
                            self.refuse(&link, why);
                            continue;
                        }
                        let shape = match chunks::check_chunks(msg.changes.iter()) {
                            Ok(shape) => shape,
                            Err(why) => {
                                self.refuse(&link, why);
                                continue;
                            }
                        };
                        let base = candidate.as_ref().unwrap_or(&self.doc);
                        let base_heads = base.get_heads();
                        let writer = Writer {
                            person: &link.person.id.0,
                            owners: &self.owners,
                        };
                        let mut accept = || {
                            schema::accept(
                                self.record.kind,
                                base,
                                &msg.changes,
                                &writer,
                                &mut candidate_ids,
                                &mut self.refused,
                            )
                        };
                        // Loading a large message keeps automerge busy for up to a second:
                        // let the runtime move this worker's other tasks to another thread.
                        let heavy = shape.rows > HEAVY_ROWS
                            && tokio::runtime::Handle::current().runtime_flavor()
                                == tokio::runtime::RuntimeFlavor::MultiThread;
                        let accepted = if heavy {
                            tokio::task::block_in_place(accept)
                        } else {
                            accept()
                        };
                        match accepted {
                            Ok(Some(accepted)) => {
                                if let Err(why) = self.claim(&link, &accepted.new_actors).await {
                                    // The check moved the identities on to a copy that is
                                    // dropped: work them out again from the document.
                                    candidate_ids = None;
                                    if why == ClaimRefused::Taken {
                                        self.refused.extend(
                                            accepted
                                                .doc
                                                .get_changes(&base_heads)
                                                .iter()
                                                .map(|c| c.hash()),
                                        );
                                    }
                                    self.refuse(&link, why.message());
                                    continue;
                                }
                                candidate = Some(accepted.doc);
                                writers.push(link.clone());
                            }
                            Ok(None) => {}
                            Err(refusal) => {
                                self.refuse(&link, &refusal.0);
                                continue;
                            }
                        }
                    }
                    // Received again after the commit, changes included: they are in the
                    // document by then (a no-op to load), and the sync state's bookkeeping
                    // depends on seeing them.
                    received.push((conn, msg, data));
                }
                DocCommand::Ephemeral {
                    link,
                    access,
                    count,
                    session,
                    data,
                } => {
                    self.relay_ephemeral(&link, access, count, &session, &data);
                }
                DocCommand::Leave { conn } => {
                    peers_changed |= self.peers.remove(&conn).is_some();
                    received.retain(|(c, _, _)| *c != conn);
                }
                DocCommand::Edit { f, done } => {
                    let mut next = candidate.as_ref().unwrap_or(&self.doc).clone();
                    match f(&mut next) {
                        Ok(()) => {
                            candidate = Some(next);
                            edits.push(done);
                        }
                        Err(e) => {
                            let _ = done.send(Err(DocError::Edit(e.to_string())));
                        }
                    }
                }
                DocCommand::Read(f) => f(&self.doc),
                DocCommand::ReadWithOwners(f) => f(&self.doc, &self.owners),
                DocCommand::SetLocked(locked) => self.locked = locked,
                DocCommand::Remote { seq } => catch_up |= seq > self.last_seq,
                DocCommand::RemoteEphemeral {
                    sender,
                    session,
                    count,
                    data,
                } => {
                    for peer in self.peers.values() {
                        peer.link.outbox.send(
                            ServerMessage::Ephemeral {
                                sender: &sender,
                                target: &peer.link.peer_id,
                                doc: self.id.as_str(),
                                count,
                                session: &session,
                                data: &data,
                            }
                            .encode(),
                        );
                    }
                }
            }
        }

        tracing::trace!(
            writers = writers.len(),
            received = received.len(),
            "batch checked"
        );
        // An edit that changed nothing has nothing to store.
        let candidate = candidate.filter(|next| next.get_heads() != before);
        // The changes this batch stored (see `answer`).
        let mut stored: HashSet<ChangeHash> = HashSet::new();
        if candidate.is_none() {
            for done in edits.drain(..) {
                let _ = done.send(Ok(()));
            }
        }
        if let Some(next) = candidate {
            let chunk = next.save_after(&before);
            let waiting: HashSet<u64> = received.iter().map(|(c, _, _)| *c).collect();
            match self.commit(chunk, waiting).await {
                Ok(seq) => {
                    // A gap means another node appended in between: read its chunks too.
                    if seq == self.last_seq + 1 {
                        self.last_seq = seq;
                    } else {
                        catch_up = true;
                    }
                    stored = next
                        .get_changes_meta(&before)
                        .into_iter()
                        .map(|c| c.hash)
                        .collect();
                    self.shared
                        .metrics
                        .changes_accepted
                        .fetch_add(stored.len() as u64, Ordering::Relaxed);
                    self.doc = next;
                    self.identities = candidate_ids;
                    for done in edits {
                        let _ = done.send(Ok(()));
                    }
                    self.chunks_since_compact += 1;
                    self.maybe_compact();
                }
                Err(err) => {
                    tracing::error!(error = %err, "could not store accepted changes");
                    let writer_conns: HashSet<u64> = writers.iter().map(|l| l.conn).collect();
                    for link in &writers {
                        self.refuse(
                            link,
                            "the server could not store your change; it was not applied",
                        );
                    }
                    received.retain(|(c, _, _)| !writer_conns.contains(c));
                    for done in edits {
                        let _ = done.send(Err(DocError::Store(err.clone())));
                    }
                }
            }
        }

        if catch_up {
            self.catch_up().await;
        }

        let answered = self.answer(received, &stored);
        let changed = self.doc.get_heads() != before;
        if changed {
            if let Some(publisher) = &self.summary_state {
                publisher.publish(&self.doc);
            }
            let others: Vec<u64> = self
                .peers
                .keys()
                .filter(|c| !answered.contains(c))
                .copied()
                .collect();
            self.fan_out(others, Hold::Unanswered);
        }
        if changed {
            self.shared
                .metrics
                .fanout_latency
                .observe(started.elapsed());
        }
        if peers_changed {
            self.report_presence();
        }
        if self.presence.is_some() {
            for conn in new_peers {
                self.send_presence_to(conn);
            }
        }
    }

    /// Receives messages and answers them. Each received message gets its answer right after
    /// it, as in a one-message-at-a-time exchange: a later message of the same peer (an
    /// acknowledgement, say) must not swallow the answer that carries the new heads. So the
    /// messages go in rounds (every peer's first message, then every peer's second, ...) and
    /// each round's answers go out before the next round is received. Within a round the peers
    /// are independent, and those in equal states share the work of receiving and answering.
    /// Returns the peers answered.
    ///
    /// A message whose changes waited for a dependency when it was checked, and whose
    /// dependency a later message of the same batch brought, would apply them here, unchecked
    /// and unstored: such a message, and everything after it from the same peer, goes back to
    /// the head of the next batch, where it is checked and stored like any other.
    ///
    /// A message without changes that names heads among `stored` (the changes this batch
    /// stored) was sent before the changes that made them: a writer's client names its new
    /// heads but leaves a change out when our Bloom filter wrongly says we hold it, and sends
    /// it in its next message. One at a time, those heads were unknown when it came, and it was
    /// answered. Received now, its heads equal ours, which automerge takes to mean the peer
    /// knows we hold them (`last_sent_heads`): nothing would tell the writer its change was
    /// stored. So it is received as it came, before the commit: what we last sent stays.
    fn answer(
        &mut self,
        received: Vec<(u64, sync::Message, Vec<u8>)>,
        stored: &HashSet<ChangeHash>,
    ) -> HashSet<u64> {
        let mut answered: HashSet<u64> = HashSet::new();
        let mut memo = ReceiveMemo::default();
        let mut again: Vec<DocCommand> = Vec::new();
        let mut held: HashSet<u64> = HashSet::new();
        for round in rounds(received) {
            let mut to_answer = Vec::with_capacity(round.len());
            for (conn, msg, raw) in round {
                let Some(peer) = self.peers.get_mut(&conn) else {
                    continue;
                };
                if held.contains(&conn) || would_apply(&self.doc, &msg) {
                    held.insert(conn);
                    again.push(DocCommand::Sync {
                        link: peer.link.clone(),
                        access: peer.access,
                        data: raw,
                    });
                    continue;
                }
                // It answered: whatever it was sent is in hand.
                peer.awaiting = None;
                let size: usize = msg.changes.iter().map(<[u8]>::len).sum();
                let sent_before = (msg.changes.is_empty()
                    && msg.heads.iter().any(|h| stored.contains(h)))
                .then(|| peer.state.last_sent_heads.clone());
                if memo
                    .receive(&mut self.doc, &mut self.recent, &mut peer.state, msg, &raw)
                    .is_err()
                {
                    let link = peer.link.clone();
                    self.refuse(&link, "the sync message could not be applied");
                    continue;
                }
                if let Some(sent) = sent_before {
                    Arc::make_mut(&mut peer.state).last_sent_heads = sent;
                }
                answered.insert(conn);
                if size > 0 {
                    self.bound_waiting(size, conn);
                }
                to_answer.push(conn);
            }
            self.fan_out(to_answer, Hold::None);
        }
        if !again.is_empty() {
            // Before anything of theirs that arrived during the commit.
            for cmd in again.into_iter().rev() {
                self.deferred.push_front(cmd);
            }
        }
        let metrics = &self.shared.metrics;
        metrics
            .receives_shared
            .fetch_add(memo.shared, Ordering::Relaxed);
        metrics
            .receives_fast
            .fetch_add(memo.fast, Ordering::Relaxed);
        answered
    }

    /// Stores a chunk through the group committer and waits until it is durable, handling
    /// meanwhile what does not depend on it (`meanwhile`). `waiting`: the peers with messages
    /// of this batch still to be received after the commit.
    async fn commit(
        &mut self,
        chunk: Vec<u8>,
        mut waiting: HashSet<u64>,
    ) -> Result<i64, Arc<crate::store::StoreError>> {
        let committer = self.shared.committer.clone();
        let commit = committer.append(self.id.clone(), chunk);
        tokio::pin!(commit);
        loop {
            tokio::select! {
                biased;
                result = &mut commit => return result,
                cmd = self.rx.recv(), if self.deferred.len() < MAX_BATCH => {
                    let Some(cmd) = cmd else { return commit.await };
                    let mut cmds = vec![cmd];
                    while cmds.len() < MAX_BATCH {
                        match self.rx.try_recv() {
                            Ok(cmd) => cmds.push(cmd),
                            Err(_) => break,
                        }
                    }
                    self.meanwhile(cmds, &mut waiting);
                }
            }
        }
    }

    /// Commands that arrived during a commit: acknowledgements (sync messages without changes)
    /// from peers with nothing waiting, new peers, presence and reads are handled now, against
    /// the stored document; the rest waits in `deferred`, and so does everything after it from
    /// the same peer (`waiting`), to keep each peer's messages in order.
    fn meanwhile(&mut self, cmds: Vec<DocCommand>, waiting: &mut HashSet<u64>) {
        let mut now: Vec<(u64, sync::Message, Vec<u8>)> = Vec::new();
        let mut new_peers = Vec::new();
        let mut peers_changed = false;
        for cmd in cmds {
            match cmd {
                DocCommand::Sync { link, access, data } if !waiting.contains(&link.conn) => {
                    let msg = match sync::Message::decode(&data) {
                        Ok(msg) if msg.changes.is_empty() => msg,
                        // Changes, or malformed: handled in order in the next batch.
                        _ => {
                            waiting.insert(link.conn);
                            self.deferred
                                .push_back(DocCommand::Sync { link, access, data });
                            continue;
                        }
                    };
                    if let Err(why) = check_sync_message(&msg) {
                        self.refuse(&link, why);
                        continue;
                    }
                    let conn = link.conn;
                    if let std::collections::hash_map::Entry::Vacant(slot) = self.peers.entry(conn)
                    {
                        slot.insert(Peer::new(link, access));
                        new_peers.push(conn);
                        peers_changed = true;
                    }
                    now.push((conn, msg, data));
                }
                DocCommand::Ephemeral {
                    link,
                    access,
                    count,
                    session,
                    data,
                } => self.relay_ephemeral(&link, access, count, &session, &data),
                DocCommand::Leave { conn } if !waiting.contains(&conn) => {
                    peers_changed |= self.peers.remove(&conn).is_some();
                    now.retain(|(c, _, _)| *c != conn);
                }
                DocCommand::Read(f) => f(&self.doc),
                other => {
                    if let DocCommand::Sync { link, .. } = &other {
                        waiting.insert(link.conn);
                    }
                    self.deferred.push_back(other);
                }
            }
        }
        self.answer(now, &HashSet::new());
        if peers_changed {
            self.report_presence();
        }
        if self.presence.is_some() {
            for conn in new_peers {
                self.send_presence_to(conn);
            }
        }
    }

    /// Loads the chunks other nodes stored since `last_seq`. They were checked by the node
    /// that accepted them and are durable, so they apply as they are.
    ///
    /// Changes waiting in this node's queue for a dependency are another matter: loading that
    /// dependency would apply them too, unchecked and unstored (an editor could send a change
    /// to this node and its dependency to another). When that would happen the queue is
    /// dropped instead; its senders still hold those changes and send them again when they
    /// reconnect, and they are checked then like any other.
    async fn catch_up(&mut self) {
        let chunks = match self
            .shared
            .store
            .load_chunks_after(&self.id, self.last_seq)
            .await
        {
            Ok(chunks) => chunks,
            Err(e) => {
                tracing::error!(error = %e, "could not read other nodes' changes");
                return;
            }
        };
        let before = self.doc.get_heads();
        // Without the queue: what the document is once the stored chunks are in.
        let mut checked = if self.doc.get_missing_deps(&[]).is_empty() || chunks.is_empty() {
            None
        } else {
            Some(without_queue(&self.doc))
        };
        for chunk in chunks {
            if let Err(e) = self.doc.load_incremental(&chunk.data) {
                tracing::error!(error = %e, seq = chunk.seq, "could not load a stored chunk");
            }
            if let Some(checked) = checked.as_mut() {
                let _ = checked.load_incremental(&chunk.data);
            }
            self.last_seq = self.last_seq.max(chunk.seq);
        }
        if let Some(checked) = checked {
            let (mut ours, mut stored) = (self.doc.get_heads(), checked.get_heads());
            ours.sort();
            stored.sort();
            if ours != stored {
                tracing::warn!(
                    "dropped waiting changes that another node's changes would have applied unchecked"
                );
                self.doc = checked;
                self.waiting_bytes = 0;
            }
        }
        self.identities = None;
        // Another node's writers may have new actors. Their owners were stored before their
        // changes, so reading them now, after the chunks, finds every one.
        let unknown = self
            .doc
            .get_changes(&before)
            .iter()
            .any(|c| !self.owners.contains_key(c.actor_id()));
        if unknown {
            match load_owners(&self.shared, &self.id).await {
                Ok(owners) => self.owners = owners,
                Err(e) => tracing::error!(error = %e, "could not read the owners of actors"),
            }
        }
    }

    /// Records the writer as the owner of actors that write in this document for the first
    /// time, before any of their changes is stored. Another node may have recorded one of them
    /// for someone else meanwhile (first writer wins): then the message is refused.
    async fn claim(
        &mut self,
        link: &PeerLink,
        actors: &[automerge::ActorId],
    ) -> Result<(), ClaimRefused> {
        if actors.is_empty() {
            return Ok(());
        }
        let hex: Vec<String> = actors.iter().map(|a| a.to_hex_string()).collect();
        let owners = match self
            .shared
            .store
            .claim_actors(&self.id, &hex, &link.person.id, now_ms())
            .await
        {
            Ok(owners) => owners,
            Err(e) => {
                tracing::error!(error = %e, "could not record the owner of an actor");
                return Err(ClaimRefused::NotStored);
            }
        };
        let mut theirs = true;
        for (actor, owner) in actors.iter().zip(owners) {
            theirs &= owner == link.person.id;
            self.owners.insert(actor.clone(), owner.0);
        }
        if theirs {
            Ok(())
        } else {
            Err(ClaimRefused::Taken)
        }
    }

    /// Changes waiting on missing dependencies sit in the document's queue (they are neither
    /// applied nor stored). A peer that keeps sending such changes without ever sending what
    /// they depend on cannot grow that queue without bound: past a limit it is dropped.
    fn bound_waiting(&mut self, size: usize, conn: u64) {
        if self.doc.get_missing_deps(&[]).is_empty() {
            self.waiting_bytes = 0;
            return;
        }
        self.waiting_bytes += size;
        if self.waiting_bytes > MAX_WAITING_BYTES {
            tracing::warn!("dropping changes that waited too long for their dependencies");
            self.doc = without_queue(&self.doc);
            self.waiting_bytes = 0;
            if let Some(peer) = self.peers.get(&conn) {
                let link = peer.link.clone();
                self.refuse(
                    &link,
                    "changes whose dependencies never arrived were dropped",
                );
            }
        }
    }

    /// Sends each peer whatever the sync protocol says it needs now, if anything. Peers whose
    /// states are equal (viewers that acknowledged the same heads, the common case) get one
    /// generated and encoded message between them and end in one state (`fanout`): the work is
    /// per distinct state, not per peer. With `Hold::Unanswered`, peers still `awaiting` an
    /// answer are passed by until it comes (or `HOLD_LIMIT` runs out).
    ///
    /// The first message that brings a peer changes up to the document's current heads goes
    /// out as new changes (`Outbox::send_new_changes`): the peer will answer it, and that
    /// answer does not count against its message rate. Once per heads: a peer asking for the
    /// same changes again earns nothing; only the document changing does.
    fn fan_out(&mut self, conns: Vec<u64>, hold: Hold) {
        let heads = Arc::new(self.doc.get_heads());
        let now = tokio::time::Instant::now();
        let mut classes = Classes::default();
        let mut held = 0;
        for conn in conns {
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            if settled(&heads[..], &peer.state) {
                peer.behind = false;
                continue;
            }
            if let (Hold::Unanswered, Some(since)) = (hold, peer.awaiting) {
                let due = since + HOLD_LIMIT;
                if now < due {
                    peer.behind = true;
                    held += 1;
                    self.hold_due = Some(self.hold_due.map_or(due, |d| d.min(due)));
                    continue;
                }
            }
            classes.add(conn, &peer.state);
        }
        let metrics = &self.shared.metrics;
        metrics.fanout_held.fetch_add(held, Ordering::Relaxed);
        for class in classes.into_classes() {
            let mut state = sync::State::clone(&class.state);
            let msg = match fanout::generate(&self.doc, &mut self.recent, &mut state) {
                Some(msg) => {
                    metrics.fanout_fast.fetch_add(1, Ordering::Relaxed);
                    msg
                }
                None => self.doc.generate_sync_message(&mut state),
            };
            let state = Arc::new(state);
            let brings_changes = msg.as_ref().is_some_and(|m| !m.changes.is_empty());
            let frame = msg.map(|msg| {
                metrics.fanout_generated.fetch_add(1, Ordering::Relaxed);
                SyncFrame::new(&self.shared.server.peer_id, self.id.as_str(), &msg.encode())
            });
            for conn in &class.members {
                let Some(peer) = self.peers.get_mut(conn) else {
                    continue;
                };
                peer.state = state.clone();
                peer.behind = false;
                if brings_changes {
                    peer.awaiting = Some(now);
                }
                if let Some(frame) = &frame {
                    let frame = frame.for_target(&peer.link.peer_id);
                    if brings_changes && peer.refunded_heads != heads {
                        peer.refunded_heads = heads.clone();
                        peer.link.outbox.send_new_changes(frame);
                    } else {
                        peer.link.outbox.send(frame);
                    }
                }
            }
        }
    }

    fn refuse(&self, link: &PeerLink, why: &str) {
        self.shared
            .metrics
            .changes_refused
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(person = %link.person.id, reason = why, "refused a sync message");
        self.send_error(link, why);
    }

    /// An `error` message to a peer about this document: `document <id>: <why>`.
    fn send_error(&self, link: &PeerLink, why: &str) {
        let message = format!("document {}: {why}", self.id);
        link.outbox.send(
            ServerMessage::Error {
                sender: &self.shared.server.peer_id,
                target: &link.peer_id,
                message: &message,
                doc: Some(self.id.as_str()),
            }
            .encode(),
        );
    }

    fn relay_ephemeral(
        &self,
        link: &PeerLink,
        access: Access,
        count: u64,
        session: &str,
        data: &[u8],
    ) {
        if access == Access::Read {
            tracing::debug!(person = %link.person.id, "dropped an ephemeral message from a read-only peer");
            return;
        }
        if data.len() > MAX_EPHEMERAL_BYTES {
            self.refuse(link, "ephemeral message too large");
            return;
        }
        let stamped = stamp_sender(data, &link.person);
        if let Some(cluster) = &self.shared.cluster {
            // NOTIFY payloads are limited to 8,000 bytes; larger ones stay on this node.
            if stamped.len() <= 5_000 {
                cluster.publish(ClusterEvent::Ephemeral {
                    node: cluster.node.clone(),
                    doc: self.id.clone(),
                    sender: link.peer_id.0.clone(),
                    session: session.to_owned(),
                    count,
                    data: base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        &stamped,
                    ),
                });
            }
        }
        for (conn, peer) in &self.peers {
            if *conn == link.conn {
                continue;
            }
            peer.link.outbox.send(
                ServerMessage::Ephemeral {
                    sender: &link.peer_id,
                    target: &peer.link.peer_id,
                    doc: self.id.as_str(),
                    count,
                    session,
                    data: &stamped,
                }
                .encode(),
            );
        }
    }

    fn report_presence(&self) {
        let mut counts = Counts::default();
        for peer in self.peers.values() {
            match peer.access {
                Access::Write => counts.editors += 1,
                Access::Read => counts.viewers += 1,
            }
        }
        self.shared
            .presence
            .set(&self.record.meeting, &self.id, counts);
        if let Some(cluster) = &self.shared.cluster {
            cluster.publish(ClusterEvent::Presence {
                node: cluster.node.clone(),
                meeting: self.record.meeting.clone(),
                doc: self.id.clone(),
                editors: counts.editors,
                viewers: counts.viewers,
            });
        }
    }

    fn schedule_presence(&mut self) {
        if self.presence_due.is_none() {
            let earliest = self
                .presence_sent
                .map(|t| t + PRESENCE_INTERVAL)
                .unwrap_or_else(tokio::time::Instant::now);
            self.presence_due = Some(earliest.max(tokio::time::Instant::now()));
        }
    }

    fn presence_payload(&self) -> Option<Vec<u8>> {
        let rx = self.presence.as_ref()?;
        let table = rx.borrow().clone();
        Some(Presence::encode(&table))
    }

    fn broadcast_presence(&mut self) {
        let Some(payload) = self.presence_payload() else {
            return;
        };
        self.presence_sent = Some(tokio::time::Instant::now());
        for conn in self.peers.keys().copied().collect::<Vec<_>>() {
            self.send_presence_payload(conn, &payload);
        }
    }

    fn send_presence_to(&self, conn: u64) {
        if let Some(payload) = self.presence_payload() {
            self.send_presence_payload(conn, &payload);
        }
    }

    fn send_presence_payload(&self, conn: u64, payload: &[u8]) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let server = &self.shared.server;
        peer.link.outbox.send(
            ServerMessage::Ephemeral {
                sender: &server.peer_id,
                target: &peer.link.peer_id,
                doc: self.id.as_str(),
                count: server.next_count(),
                session: &server.session_id,
                data: payload,
            }
            .encode(),
        );
    }

    fn maybe_compact(&mut self) {
        if self.chunks_since_compact < self.shared.config.compact_after
            || self.compacting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.chunks_since_compact = 0;
        let shared = self.shared.clone();
        let id = self.id.clone();
        let flag = self.compacting.clone();
        // Everything in the document is stored (changes are swapped in once durable): a copy
        // costs milliseconds, where loading the chunks again costs a whole load.
        let held = self.doc.clone();
        spawn_for(&self.shared, &self.id, "compact", async move {
            if let Err(e) = compact(shared.store.as_ref(), &id, Some(held)).await {
                tracing::warn!(error = %e, "compaction failed; the chunks stay as they were");
            }
            flag.store(false, Ordering::Release);
        });
    }
}

/// Why a message's new actors could not become the writer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClaimRefused {
    /// Someone else's already.
    Taken,
    /// The database did not take the claim.
    NotStored,
}

impl ClaimRefused {
    fn message(self) -> &'static str {
        match self {
            ClaimRefused::Taken => "the change is written with another person's Automerge actor id",
            ClaimRefused::NotStored => "the server could not store your change; it was not applied",
        }
    }
}

/// Replaces a document's stored chunks by one snapshot, which must hold exactly the changes of
/// the chunks it replaces. It reads the chunks back, and saves `held` (the document in memory)
/// only if its heads are theirs and nothing waits in its queue: then it holds every change they
/// hold, and no other (each of its changes is an ancestor of their heads; automerge would save
/// the queue's unchecked changes too). Otherwise (another node appended meanwhile, a change
/// waits for a dependency) it loads the chunks and saves that.
pub async fn compact(
    store: &dyn Store,
    id: &DocId,
    held: Option<Automerge>,
) -> Result<Compacted, DocError> {
    let chunks = store.load_chunks(id).await?;
    let Some(last) = chunks.last() else {
        return Ok(Compacted::Nothing);
    };
    if chunks.len() < 2 {
        return Ok(Compacted::Nothing);
    }
    let upto = last.seq;
    let (snapshot, from) = tokio::task::spawn_blocking(move || {
        let data: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
        match held {
            Some(doc)
                if doc.get_missing_deps(&[]).is_empty()
                    && chunks::heads(&data).is_ok_and(|heads| heads == doc.get_heads()) =>
            {
                Ok((doc.save(), Compacted::FromMemory))
            }
            _ => load_doc(&chunks).map(|d| (d.save(), Compacted::FromChunks)),
        }
    })
    .await
    .map_err(|e| DocError::Corrupt(e.to_string()))??;
    store.compact(id, upto, &snapshot).await?;
    tracing::debug!(doc = %id, upto, bytes = snapshot.len(), ?from, "compacted");
    Ok(from)
}

/// What [`compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compacted {
    /// Fewer than two chunks: nothing to compact.
    Nothing,
    /// Saved the document in memory.
    FromMemory,
    /// Loaded the chunks and saved them.
    FromChunks,
}

/// Whether receiving `msg` would apply a change `doc` does not hold: one of its changes is new
/// and has every dependency in `doc`. (A message whose new changes all lack a dependency
/// applies nothing: they can only wait.)
fn would_apply(doc: &Automerge, msg: &sync::Message) -> bool {
    msg.changes.iter().any(|chunk| {
        automerge::Change::try_from(chunk).is_ok_and(|change| {
            doc.get_change_by_hash(&change.hash()).is_none()
                && change
                    .deps()
                    .iter()
                    .all(|dep| doc.get_change_by_hash(dep).is_some())
        })
    })
}

/// A copy of `doc` without the changes waiting in its queue for their dependencies. (Saving
/// and loading keeps them: automerge saves its queue with the document.)
fn without_queue(doc: &Automerge) -> Automerge {
    let mut copy = Automerge::new().with_actor(doc.get_actor().clone());
    copy.apply_changes(doc.get_changes(&[]))
        .expect("a document's own changes apply");
    copy
}

/// Sets `sender` in a CBOR map payload to the authenticated person, whatever the client wrote.
fn stamp_sender(data: &[u8], person: &Person) -> Vec<u8> {
    use ciborium::Value;
    let Ok(Value::Map(mut entries)) = ciborium::de::from_reader::<Value, _>(data) else {
        return data.to_vec();
    };
    let text = |s: &str| Value::Text(s.to_owned());
    entries.retain(|(k, _)| k.as_text() != Some("sender"));
    entries.push((
        text("sender"),
        Value::Map(vec![
            (text("person"), text(&person.id.0)),
            (text("name"), text(&person.name)),
            (text("role"), text(person.role.as_str())),
        ]),
    ));
    let mut out = Vec::new();
    ciborium::ser::into_writer(&Value::Map(entries), &mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// Splits messages into rounds: every peer's first message, then every peer's second, and so
/// on, each in arrival order.
fn rounds<T>(received: Vec<(u64, T, Vec<u8>)>) -> Vec<Vec<(u64, T, Vec<u8>)>> {
    let mut rounds: Vec<Vec<(u64, T, Vec<u8>)>> = Vec::new();
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for item in received {
        let n = seen.entry(item.0).or_default();
        if rounds.len() <= *n {
            rounds.push(Vec::new());
        }
        rounds[*n].push(item);
        *n += 1;
    }
    rounds
}

async fn changed(rx: &mut Option<watch::Receiver<Table>>) -> Result<(), watch::error::RecvError> {
    match rx {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;

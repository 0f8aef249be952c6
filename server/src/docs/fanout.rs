//! Sync work shared between peers in the same state.
//!
//! A thousand viewers of a document receive the same messages in the same order, so their
//! `sync::State`s are equal most of the time, and so are the acknowledgements they send back.
//! Both halves of the exchange are pure functions of the document and the state (and, for a
//! received message, its bytes), and so is the state they leave behind. Doing them once per
//! distinct state instead of once per peer is what makes the work per change independent of the
//! number of viewers:
//! - `ReceiveMemo`: receiving a message without changes (an acknowledgement) in a state already
//!   seen with the same message bytes takes the resulting state; and one received afresh is
//!   received without automerge's walk of the whole change graph back from the peer's heads
//!   (`receive_acknowledgement`), which made every acknowledgement cost more the longer the
//!   document's history;
//! - `Classes`: peers with equal states get one generated and encoded message between them.
//! - `Recent` and `generate`: the changes the document gained while the actor held it, step
//!   by step, as their bytes, so that generating a message for a peer that acknowledged one of
//!   those steps takes them from there. Automerge would walk the change graph back to the
//!   peer's heads twice (the changes to send, the Bloom filter of ours) and rebuild each change
//!   from the operations: with viewers spread over a few acknowledged heads under load, that
//!   was the largest single cost of a fan-out.
//!   Messages that carry the whole document (to a peer that holds nothing of it, or lacks more
//!   than a third) take it from one save per heads instead of a save per message.
//! - `first_contact` and `returning`: the answer to a peer that holds nothing of the document,
//!   or holds it as stored up to some (or none) of the changes after its snapshot, built from
//!   the stored chunks, so that it goes out while the document is still loading.
//!
//! Peers hold their state behind an `Arc`, and peers given the same resulting state share one:
//! two peers holding the same `Arc` are in equal states without comparing them, so the work per
//! peer is a pointer lookup, and states are compared once per distinct `Arc`. A state is never
//! changed in place while shared (`Arc::make_mut`).
//!
//! Both are only valid while the document does not change; the actor drops them when it does.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;

use automerge::sync::{self, BloomFilter, Capability, Have, MessageFlags, MessageVersion, SyncDoc};
use automerge::{Automerge, AutomergeError, ChangeHash};

use crate::sync::chunks::History;

/// A peer's sync state, shared with the peers known to be in the same state.
pub(super) type SharedState = Arc<sync::State>;

/// Identifies a shared state while something holds it.
fn identity(state: &SharedState) -> usize {
    Arc::as_ptr(state) as usize
}

/// A hash of the fields that tell states apart in practice (hashing the whole state, sent
/// hashes and Bloom filters included, showed in profiles). Equality is checked on the whole
/// state wherever this is used.
fn state_key(state: &sync::State, hasher: &mut impl Hasher) {
    state.their_heads.hash(hasher);
    state.last_sent_heads.hash(hasher);
    state.shared_heads.hash(hasher);
    state.in_flight.hash(hasher);
    state.sent_hashes.len().hash(hasher);
}

struct Received {
    /// Kept so that its address is not reused while the memo knows it.
    before: SharedState,
    message: Vec<u8>,
    after: SharedState,
}

/// Results of receiving change-free messages, by the state they were received in and the
/// message's bytes.
#[derive(Default)]
pub(super) struct ReceiveMemo {
    hasher: RandomState,
    /// By the identity of the state received in.
    by_identity: HashMap<usize, Vec<Received>>,
    /// By the value of the state received in, for equal states held in different `Arc`s.
    by_value: HashMap<u64, Vec<Received>>,
    /// Receives done by automerge, done by `receive_acknowledgement`, and that took a
    /// remembered result.
    pub computed: u64,
    pub fast: u64,
    pub shared: u64,
}

impl ReceiveMemo {
    /// `doc.receive_sync_message(state, message)`, with `raw` the message's encoded bytes.
    /// A message carrying changes may change the document: it is received as it is, and
    /// everything remembered so far is forgotten.
    pub fn receive(
        &mut self,
        doc: &mut Automerge,
        recent: &mut Recent,
        state: &mut SharedState,
        message: sync::Message,
        raw: &[u8],
    ) -> Result<(), AutomergeError> {
        if !message.changes.is_empty() {
            self.by_identity.clear();
            self.by_value.clear();
            // The actor receives a writer's message after storing its changes: nothing to load.
            // Heads first: a lookup each, where the changes are parsed and hashed.
            if heads_known(doc, recent, &message.heads) && holds_every_change(doc, &message) {
                receive_acknowledgement(doc, recent, Arc::make_mut(state), message);
                self.fast += 1;
                return Ok(());
            }
            self.computed += 1;
            return doc.receive_sync_message(Arc::make_mut(state), message);
        }
        let id = identity(state);
        if let Some(seen) = self
            .by_identity
            .get(&id)
            .and_then(|list| list.iter().find(|r| r.message == raw))
        {
            *state = seen.after.clone();
            self.shared += 1;
            return Ok(());
        }
        let mut hasher = self.hasher.build_hasher();
        state_key(state, &mut hasher);
        hasher.write(raw);
        let key = hasher.finish();
        let after = match self.by_value.get(&key).and_then(|list| {
            list.iter()
                .find(|r| r.message == raw && *r.before == **state)
        }) {
            Some(seen) => {
                self.shared += 1;
                seen.after.clone()
            }
            None => {
                let mut next = sync::State::clone(state);
                if acknowledges_known_heads(doc, recent, &message) {
                    receive_acknowledgement(doc, recent, &mut next, message);
                    self.fast += 1;
                } else {
                    doc.receive_sync_message(&mut next, message)?;
                    self.computed += 1;
                }
                let after = Arc::new(next);
                self.by_value.entry(key).or_default().push(Received {
                    before: state.clone(),
                    message: raw.to_vec(),
                    after: after.clone(),
                });
                after
            }
        };
        self.by_identity.entry(id).or_default().push(Received {
            before: state.clone(),
            message: raw.to_vec(),
            after: after.clone(),
        });
        *state = after;
        Ok(())
    }
}

/// Whether `receive_acknowledgement` applies: a message without changes whose heads are all
/// changes of ours.
fn acknowledges_known_heads(doc: &Automerge, recent: &mut Recent, message: &sync::Message) -> bool {
    message.changes.is_empty() && heads_known(doc, recent, &message.heads)
}

/// Whether `heads` are some heads, all changes of ours.
fn heads_known(doc: &Automerge, recent: &mut Recent, heads: &[ChangeHash]) -> bool {
    if heads.is_empty() {
        return false;
    }
    // Heads of a recent step (the current ones included) need no lookup.
    recent.follow(doc);
    recent.since(heads).is_some()
        || heads
            .iter()
            .all(|h| doc.get_change_meta_by_hash(h).is_some())
}

/// Whether every chunk of `message` is a change `doc` already holds, so that automerge's receive
/// would load nothing. (A document chunk, or a change waiting for its dependencies, is not.)
fn holds_every_change(doc: &Automerge, message: &sync::Message) -> bool {
    message.changes.iter().all(|chunk| {
        automerge::Change::try_from(chunk)
            .is_ok_and(|change| doc.get_change_meta_by_hash(&change.hash()).is_some())
    })
}

/// What automerge's `receive_sync_message` (0.12) does with a message that carries no changes,
/// or only changes we hold, and whose heads we all hold, step by step (loading changes we hold
/// changes nothing, and the shared heads it advances are then set to the message's heads),
/// except for how it trims `sent_hashes` to the changes the peer may still lack: without
/// automerge's walk of the whole history (`trim_sent`), taking the changes since the peer's
/// heads from `recent` where it has them. The tests compare this with automerge's own receive. `recent` follows `doc` (as
/// `heads_known`, checked first, leaves it).
fn receive_acknowledgement(
    doc: &Automerge,
    recent: &Recent,
    state: &mut sync::State,
    message: sync::Message,
) {
    let ours = doc.get_heads();
    state.in_flight = false;
    if let Some(flags) = message.flags {
        receive_flags(state, flags);
    }
    if message.heads == ours && message.changes.is_empty() {
        // No changes and the heads we hold: automerge takes these as the heads we last sent.
        state.last_sent_heads.clone_from(&message.heads);
    }
    let since = || {
        recent
            .since(&message.heads)
            .map(|changes| changes.map(|c| c.hash).collect())
    };
    trim_sent(doc, &message.heads, since, &mut state.sent_hashes);
    // Every head is known to us: they are the heads both peers hold.
    state.shared_heads.clone_from(&message.heads);
    state.their_have = Some(message.have);
    state.their_need = Some(message.need);
    state.their_heads = Some(message.heads);
}

/// Drops from `sent`, the hashes of changes sent to a peer, those that are ancestors of (or
/// among) `heads`, changes `doc` holds: what automerge's receive (0.12) does by walking the
/// change graph back from `heads` through the whole history, on every message, whether or not
/// anything was sent. Every change an actor makes depends on its previous one, so a change is
/// an ancestor of `heads` exactly when it is not among the changes since them: `since`, where
/// the caller has them at hand, or else found from the vector clock of `heads` (which automerge
/// caches). When `heads` are our current heads, nothing is left; nothing is looked up when
/// nothing was sent. A hash `doc` does not hold stays, as it does in automerge (there are none:
/// what was sent came from `doc`).
pub fn trim_sent(
    doc: &Automerge,
    heads: &[ChangeHash],
    since: impl FnOnce() -> Option<HashSet<ChangeHash>>,
    sent: &mut BTreeSet<ChangeHash>,
) {
    if sent.is_empty() || heads.is_empty() {
        return;
    }
    if heads == doc.get_heads() {
        sent.clear();
        return;
    }
    let since = since().unwrap_or_else(|| {
        doc.get_changes_meta(heads)
            .into_iter()
            .map(|c| c.hash)
            .collect()
    });
    sent.retain(|h| since.contains(h) || doc.get_change_meta_by_hash(h).is_none());
}

/// Peers in equal states.
pub(super) struct Class {
    pub state: SharedState,
    pub members: Vec<u64>,
}

/// Groups peers by equal sync states: by the identity of their shared state first, then by
/// value among the distinct states.
#[derive(Default)]
pub(super) struct Classes {
    hasher: RandomState,
    by_identity: HashMap<usize, Class>,
}

impl Classes {
    pub fn add(&mut self, conn: u64, state: &SharedState) {
        self.by_identity
            .entry(identity(state))
            .or_insert_with(|| Class {
                state: state.clone(),
                members: Vec::new(),
            })
            .members
            .push(conn);
    }

    pub fn into_classes(self) -> Vec<Class> {
        // State hash -> classes with equal states (hash collisions make more classes).
        let mut buckets: HashMap<u64, Vec<Class>> = HashMap::new();
        for class in self.by_identity.into_values() {
            let mut hasher = self.hasher.build_hasher();
            state_key(&class.state, &mut hasher);
            let bucket = buckets.entry(hasher.finish()).or_default();
            match bucket.iter_mut().find(|c| c.state == class.state) {
                Some(c) => c.members.extend(class.members),
                None => bucket.push(class),
            }
        }
        buckets.into_values().flatten().collect()
    }
}

/// Whether `generate_sync_message` would return nothing for this state, decided without the
/// work it does first (finding the changes the peer lacks through the change graph): the peer
/// has told us it holds exactly our heads, asks for nothing, summarises its changes from those
/// heads, and we already sent those heads. Every acknowledgement from every viewer lands here.
pub(super) fn settled(heads: &[ChangeHash], state: &sync::State) -> bool {
    !heads.is_empty()
        && state.have_responded
        && !state.needs_reset
        && state.last_sent_heads == heads
        && state.their_heads.as_deref() == Some(heads)
        && state.their_need.as_ref().is_some_and(Vec::is_empty)
        && state
            .their_have
            .as_ref()
            .is_some_and(|have| have.iter().all(|h| h.last_sync == heads))
}

/// Changes kept in `Recent` (a few seconds of a busy meeting's typing in one document).
const RECENT_CHANGES: usize = 4096;

/// A change the document gained while the actor held it.
pub(super) struct RecentChange {
    hash: ChangeHash,
    deps: Vec<ChangeHash>,
    bytes: Vec<u8>,
}

/// One step of the document: its heads after the step, and the changes the step added.
struct Step {
    heads: Vec<ChangeHash>,
    changes: Vec<RecentChange>,
    /// At most the number of changes in the document after the step: the sum, over the
    /// heads' actors, of the head's sequence number (an actor's changes are numbered from 1).
    at_least: usize,
}

/// A lower bound of the changes in a document with these heads (see `Step::at_least`).
fn at_least(doc: &Automerge, heads: &[ChangeHash]) -> usize {
    let mut seqs: HashMap<automerge::ActorId, u64> = HashMap::new();
    for meta in heads.iter().filter_map(|h| doc.get_change_meta_by_hash(h)) {
        let seq = seqs.entry(meta.actor.into_owned()).or_default();
        *seq = (*seq).max(meta.seq);
    }
    seqs.values()
        .map(|&s| usize::try_from(s).unwrap_or(usize::MAX))
        .sum()
}

/// The document's recent history, step by step (a commit, another node's chunks), oldest
/// first. A step's changes are exactly those that are not ancestors of the heads before it,
/// since every change a document holds is an ancestor of its heads: so the changes since a
/// step's heads are the changes of the steps after it, with no walk of the change graph.
#[derive(Default)]
pub(super) struct Recent {
    steps: VecDeque<Step>,
    /// Changes in `steps` after the first (the first one's are never asked for).
    held: usize,
    /// Changes in the document, once counted.
    total: std::cell::OnceCell<usize>,
    /// The whole document as of the last step, once a message needed it.
    whole: Option<Whole>,
}

/// The whole document, saved, with the hashes of all its changes and their Bloom filter: what
/// a message that carries the whole document needs. Automerge saves the document afresh for
/// each such message (tens of milliseconds for a long history); this is kept until the
/// document changes, so that a crowd of new peers costs one save.
struct Whole {
    saved: Vec<u8>,
    hashes: BTreeSet<ChangeHash>,
    bloom: BloomFilter,
}

impl Recent {
    /// Records the document's changes since the last step, if any, as a new step; returns the
    /// document's heads (the last step's).
    pub fn follow(&mut self, doc: &Automerge) -> &[ChangeHash] {
        let heads = doc.get_heads();
        let changed = self.steps.back().is_none_or(|last| last.heads != heads);
        if changed {
            self.whole = None;
            let changes: Vec<RecentChange> = match self.steps.back() {
                None => Vec::new(),
                Some(last) => doc
                    .get_changes(&last.heads)
                    .into_iter()
                    .map(|c| RecentChange {
                        hash: c.hash(),
                        deps: c.deps().to_vec(),
                        bytes: c.raw_bytes().to_vec(),
                    })
                    .collect(),
            };
            if let Some(total) = self.total.get_mut() {
                *total += changes.len();
            }
            self.held += changes.len();
            let at_least = at_least(doc, &heads);
            self.steps.push_back(Step {
                heads,
                changes,
                at_least,
            });
            while self.held > RECENT_CHANGES && self.steps.len() > 1 {
                self.steps.pop_front();
                if let Some(first) = self.steps.front() {
                    self.held -= first.changes.len();
                }
            }
        }
        &self.steps.back().expect("a step was just kept").heads
    }

    /// The whole document as of the last step (`None` for an empty document). Call `follow`
    /// first: it drops the kept one when the document has changed.
    fn whole(&mut self, doc: &Automerge) -> Option<&Whole> {
        if self.whole.is_none() {
            // What automerge sends a peer that holds nothing, generated once: the saved
            // document, the Bloom filter of every change, and every hash as sent.
            let mut state = sync::State::new();
            state.their_heads = Some(Vec::new());
            state.their_need = Some(Vec::new());
            state.their_have = Some(vec![Have {
                last_sync: Vec::new(),
                bloom: BloomFilter::from_hashes(std::iter::empty::<&ChangeHash>()),
            }]);
            state.their_capabilities = Some(vec![Capability::MessageV2]);
            let whole = doc.generate_sync_message(&mut state).and_then(|mut msg| {
                let saved = msg.changes.iter().next()?.to_vec();
                let bloom = msg.have.pop()?.bloom;
                Some(Whole {
                    saved,
                    hashes: std::mem::take(&mut state.sent_hashes),
                    bloom,
                })
            });
            if let Some(whole) = &whole {
                let _ = self.total.set(whole.hashes.len());
            }
            self.whole = whole;
        }
        self.whole.as_ref()
    }

    /// The changes since `heads`, oldest first, if they were the heads after a step still
    /// kept. Call `follow` first.
    fn since<'a>(
        &'a self,
        heads: &[ChangeHash],
    ) -> Option<impl Iterator<Item = &'a RecentChange> + 'a> {
        let at = self.steps.iter().rposition(|s| s.heads == heads)?;
        Some(
            self.steps
                .iter()
                .skip(at + 1)
                .flat_map(|s| s.changes.iter()),
        )
    }

    /// Whether more than a third of the document's changes are `n` (automerge's rule for
    /// sending the whole document instead). Counting the changes walks the whole history, so it
    /// is done only when the lower bound of the last step cannot settle it, and then once.
    fn over_a_third(&self, doc: &Automerge, n: usize) -> bool {
        let at_least = self.steps.back().map_or(0, |s| s.at_least);
        if n.saturating_mul(3) <= at_least {
            return false;
        }
        let total = *self.total.get_or_init(|| doc.get_changes_meta(&[]).len());
        n > total / 3
    }
}

/// `doc.generate_sync_message(state)`, taking the changes from `recent`, for the states a
/// fan-out meets: the peer's summary (`Have`) and our own last one both start from heads of a
/// recent step, and the peer needs nothing named; or the peer gets the whole document (it holds
/// nothing, or lacks more than a third), saved once per heads (`whole`). Returns `None`, with
/// `state` untouched, for anything else (a reset, a peer far behind, an old client that holds
/// nothing): automerge generates those.
/// Otherwise the message and the state left are those of automerge 0.12's
/// `generate_sync_message`, step for step; the tests compare the two.
pub(super) fn generate(
    doc: &Automerge,
    recent: &mut Recent,
    state: &mut sync::State,
) -> Option<Option<sync::Message>> {
    if state.needs_reset || state.peer_read_only {
        return None;
    }
    let their_heads = state.their_heads.as_ref()?;
    let [their_have] = state.their_have.as_deref()? else {
        return None;
    };
    let their_need = state.their_need.as_ref()?;
    if !their_need.is_empty() {
        return None;
    }
    let v2 = speaks_v2(state);
    // Empty heads: the peer holds nothing (first contact), automerge sends the whole document.
    if their_heads.is_empty() {
        let known = their_have
            .last_sync
            .iter()
            .all(|h| doc.get_change_meta_by_hash(h).is_some());
        return (v2 && known).then(|| whole(doc, recent, state)).flatten();
    }
    // What we would ask them for: nothing, if we hold all their heads (and a read-only state
    // asks for nothing anyway).
    if !state.read_only
        && !their_heads
            .iter()
            .all(|h| doc.get_change_meta_by_hash(h).is_some())
    {
        return None;
    }
    let our_heads = recent.follow(doc).to_vec();
    let ours: Vec<ChangeHash> = recent.since(&state.shared_heads)?.map(|c| c.hash).collect();
    let since: Vec<&RecentChange> = recent.since(&their_have.last_sync)?.collect();

    // The changes they lack: those since their summary's heads that are not in their Bloom
    // filter, and everything depending on one of those.
    let mut dependents: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
    let mut to_send: HashSet<ChangeHash> = HashSet::new();
    for change in &since {
        for dep in &change.deps {
            dependents.entry(*dep).or_default().push(change.hash);
        }
        if !their_have.bloom.contains_hash(&change.hash) {
            to_send.insert(change.hash);
        }
    }
    let mut stack: Vec<ChangeHash> = to_send.iter().copied().collect();
    while let Some(hash) = stack.pop() {
        for dependent in dependents.get(&hash).into_iter().flatten() {
            if to_send.insert(*dependent) {
                stack.push(*dependent);
            }
        }
    }
    let changes: Vec<&RecentChange> = since
        .into_iter()
        .filter(|c| to_send.contains(&c.hash) && !state.sent_hashes.contains(&c.hash))
        .collect();
    let lacking = changes.len();
    if v2 && recent.over_a_third(doc, lacking) {
        // Automerge sends the whole document instead.
        return whole(doc, recent, state);
    }

    let heads_unchanged = state.last_sent_heads == our_heads;
    let heads_equal = *their_heads == our_heads;
    if heads_unchanged && state.have_responded {
        if (heads_equal || state.read_only) && changes.is_empty() {
            return Some(None);
        }
        if state.in_flight {
            return Some(None);
        }
    }

    let (chunks, version) = if !v2 {
        let chunks = changes.iter().map(|c| c.bytes.clone()).collect();
        (chunks, MessageVersion::V1)
    } else if changes.is_empty() {
        (Vec::new(), MessageVersion::V2)
    } else {
        let mut joined = Vec::with_capacity(changes.iter().map(|c| c.bytes.len()).sum());
        for change in &changes {
            joined.extend_from_slice(&change.bytes);
        }
        (vec![joined], MessageVersion::V2)
    };
    let bloom = BloomFilter::from_hashes(ours.iter());
    state.sent_hashes.extend(changes.iter().map(|c| c.hash));
    Some(Some(sent(state, our_heads, bloom, chunks, version)))
}

/// The message automerge builds at the end of `generate_sync_message` (needing nothing, our
/// summary from the shared heads), and what sending it does to the state; the sent hashes are
/// the caller's.
fn sent(
    state: &mut sync::State,
    our_heads: Vec<ChangeHash>,
    bloom: BloomFilter,
    chunks: Vec<Vec<u8>>,
    version: MessageVersion,
) -> sync::Message {
    let message = sync::Message {
        heads: our_heads.clone(),
        need: Vec::new(),
        have: vec![Have {
            last_sync: state.shared_heads.clone(),
            bloom,
        }],
        changes: sync::ChunkList::from(chunks),
        flags: Some(our_flags(state)),
        version,
    };
    state.have_responded = true;
    state.last_sent_heads = our_heads;
    state.in_flight = true;
    message
}

/// What automerge 0.12's receive does with the flags of a message: any peer that sends them
/// speaks the second message version.
pub fn receive_flags(state: &mut sync::State, flags: MessageFlags) {
    let mut capabilities = vec![Capability::MessageV2];
    if flags.contains(MessageFlags::SUPPORTS_SYNC_RESET) {
        capabilities.push(Capability::SyncReset);
    }
    state.their_capabilities = Some(capabilities);
    if flags.contains(MessageFlags::SYNC_RESET) {
        state.sent_hashes.clear();
    }
    state.peer_read_only = flags.contains(MessageFlags::READ_ONLY);
}

/// Whether the peer's messages said it speaks the second message version.
fn speaks_v2(state: &sync::State) -> bool {
    state
        .their_capabilities
        .as_ref()
        .is_some_and(|caps| caps.contains(&Capability::MessageV2))
}

/// The flags automerge 0.12 puts on every message.
fn our_flags(state: &sync::State) -> MessageFlags {
    let mut flags = MessageFlags::new();
    flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
    if state.read_only {
        flags.set(MessageFlags::READ_ONLY);
    }
    flags
}

/// `generate` where automerge sends the whole document (`send_doc`, or more than a third of
/// the changes lacking), from `Recent::whole`. Our summary (`have`) starts from the shared
/// heads: from nothing, the Bloom filter of every change, kept with the saved document;
/// otherwise from a recent step, or this leaves the message to automerge (`None`).
fn whole(
    doc: &Automerge,
    recent: &mut Recent,
    state: &mut sync::State,
) -> Option<Option<sync::Message>> {
    let our_heads = recent.follow(doc).to_vec();
    let bloom = if state.shared_heads.is_empty() {
        None
    } else {
        let ours: Vec<ChangeHash> = recent.since(&state.shared_heads)?.map(|c| c.hash).collect();
        Some(BloomFilter::from_hashes(ours.iter()))
    };
    let whole = recent.whole(doc)?;
    if state.last_sent_heads == our_heads && state.have_responded && state.in_flight {
        return Some(None);
    }
    let bloom = bloom.unwrap_or_else(|| whole.bloom.clone());
    let chunks = vec![whole.saved.clone()];
    if state.sent_hashes.is_empty() {
        state.sent_hashes = whole.hashes.clone();
    } else {
        state.sent_hashes.extend(whole.hashes.iter().copied());
    }
    Some(Some(sent(
        state,
        our_heads,
        bloom,
        chunks,
        MessageVersion::V2,
    )))
}

/// A document as the store holds it (its chunks back to back), for answering peers before it
/// is loaded: one that holds nothing of it (`first_contact`), or a copy the stored changes can
/// place (`returning`). What the chunks say of its history is read the first time a peer needs
/// it.
pub(super) struct Stored {
    bytes: Vec<u8>,
    read: std::cell::OnceCell<Option<Read>>,
}

/// What the stored chunks say of the history they load into, and its heads.
struct Read {
    history: History,
    heads: Vec<ChangeHash>,
}

impl Stored {
    /// The stored form of a document, unless it is far past its compaction (more chunks than
    /// `compact_after` and a snapshot): a peer loads a long run of single changes much more
    /// slowly than automerge's save of them, which it gets once the document is loaded.
    pub fn of(chunks: &[crate::store::Chunk], compact_after: usize) -> Option<Self> {
        (chunks.len() <= compact_after + 1).then(|| Self {
            bytes: chunks.iter().flat_map(|c| c.data.iter().copied()).collect(),
            read: std::cell::OnceCell::new(),
        })
    }

    fn read(&self) -> Option<&Read> {
        self.read
            .get_or_init(|| {
                crate::sync::chunks::history(&self.bytes)
                    .inspect_err(|e| tracing::warn!(error = e, "unreadable stored chunks"))
                    .ok()
                    .map(|history| Read {
                        heads: history.heads(),
                        history,
                    })
            })
            .as_ref()
    }

    /// The heads of the document the chunks load into, if they can be read.
    pub fn heads(&self) -> Option<&[ChangeHash]> {
        self.read().map(|r| &r.heads[..])
    }

    /// The answer to a peer's first message from the stored chunks, if it can be given
    /// without the loaded document: `first_contact` or `returning`.
    pub fn answer(&self, msg: &sync::Message, state: &mut sync::State) -> Option<sync::Message> {
        let Read { history, heads } = self.read()?;
        first_contact(msg, heads, &self.bytes, state)
            .or_else(|| returning(msg, history, heads, &self.bytes, state))
    }
}

/// The answer to a peer's first message when the peer holds nothing of the document, built
/// from the document as the store holds it (`stored`: its chunks back to back, whose heads
/// are `heads`) rather than from the loaded document, which a cold document does not have yet.
///
/// Message and state are those of automerge 0.12's `receive_sync_message` of `msg` in the
/// fresh `state`, then `generate_sync_message`, which sends such a peer the whole document,
/// except that:
/// - the document goes as the stored chunks rather than a fresh save (the same changes);
/// - the message carries no summary of ours (`have` is empty, as automerge sends it while it
///   needs something): a peer with nothing has no use for one, and it names every change;
/// - the state records no sent hashes. Automerge records all of them, and forgets them when
///   the peer's answer names heads that include them.
///
/// Automerge sends the whole document only to a peer that supports the second message
/// version and does not declare itself read-only; for anything else this returns `None` and
/// leaves `state` untouched.
fn first_contact(
    msg: &sync::Message,
    heads: &[ChangeHash],
    stored: &[u8],
    state: &mut sync::State,
) -> Option<sync::Message> {
    let flags = msg.flags?;
    if !is_new(state)
        || heads.is_empty()
        || !msg.heads.is_empty()
        || !msg.need.is_empty()
        || !msg.changes.is_empty()
        || msg.have.iter().any(|h| !h.last_sync.is_empty())
        || flags.contains(MessageFlags::READ_ONLY)
    {
        return None;
    }
    // What receiving it leaves.
    receive_flags(state, flags);
    state.shared_heads = Vec::new();
    state.last_sent_heads = Vec::new();
    state.sent_hashes.clear();
    state.their_have = Some(msg.have.clone());
    state.their_heads = Some(Vec::new());
    state.their_need = Some(Vec::new());
    // What generating the answer leaves.
    let out = our_flags(state);
    state.have_responded = true;
    state.last_sent_heads = heads.to_vec();
    state.in_flight = true;
    Some(sync::Message {
        heads: heads.to_vec(),
        need: Vec::new(),
        have: Vec::new(),
        changes: sync::ChunkList::from(vec![stored.to_vec()]),
        flags: Some(out),
        version: MessageVersion::V2,
    })
}

/// Whether `state` is as new: nothing received from the peer, nothing sent to it.
fn is_new(state: &sync::State) -> bool {
    state.their_heads.is_none() && !state.have_responded && !state.needs_reset
}

/// What automerge 0.12's receive leaves in a new state from a peer's first message, when the
/// message carries no changes and we hold every head it names.
fn receive_first(msg: &sync::Message, state: &mut sync::State) {
    if let Some(flags) = msg.flags {
        receive_flags(state, flags);
    }
    state.in_flight = false;
    state.shared_heads.clone_from(&msg.heads);
    state.their_have = Some(msg.have.clone());
    state.their_heads = Some(msg.heads.clone());
    state.their_need = Some(msg.need.clone());
}

/// The message version automerge 0.12 sends a peer in `state`.
fn version_for(state: &sync::State) -> MessageVersion {
    if speaks_v2(state) {
        MessageVersion::V2
    } else {
        MessageVersion::V1
    }
}

/// The answer to a peer's first message when the peer holds the document as stored, or as
/// stored up to some of the changes stored after its snapshot: a device coming back to a
/// document after a restart, or after it was unloaded for being idle, in step with it or
/// behind by what others wrote while it was away.
///
/// Message and state are those of automerge 0.12's `receive_sync_message` of `msg` in the
/// fresh `state`, then `generate_sync_message`, but for the order of the changes sent (the
/// stored order, a topological one, where automerge has its own). What the peer lacks, what
/// it is sent, and our summary all come from the stored changes after the snapshot, which
/// `history` lists with their hashes and dependencies:
/// - the peer's heads must be stored changes or snapshot heads, and reach every snapshot head
///   through the stored changes' dependencies: then it holds the snapshot, and it lacks
///   exactly the stored changes its heads do not reach (none, for a peer in step: its heads
///   are ours, and it is sent nothing);
/// - its summary (`have`, one at most) must start from nothing or from heads that pass the
///   same test (automerge checks them first, and asks a peer whose heads it does not know to
///   start again); what automerge sends is then the changes since those heads that its Bloom
///   filter does not name (a change of the snapshot it always names, as the peer holds it),
///   and everything depending on one of those;
/// - automerge sends the whole document instead when that is more than a third of the
///   changes: those peers wait for the load, as does anything else.
fn returning(
    msg: &sync::Message,
    history: &History,
    heads: &[ChangeHash],
    stored: &[u8],
    state: &mut sync::State,
) -> Option<sync::Message> {
    if !is_new(state)
        || heads.is_empty()
        || msg.heads.is_empty()
        || !msg.need.is_empty()
        || !msg.changes.is_empty()
        || msg.have.len() > 1
    {
        return None;
    }
    let changes = &history.changes;
    let total = history.snapshot_changes? + changes.len() as u64;
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash, i))
        .collect();
    // Which stored changes `from` holds, if it holds the snapshot.
    let held_by = |from: &[ChangeHash]| -> Option<Vec<bool>> {
        let mut held = vec![false; changes.len()];
        let mut reached = HashSet::new();
        let mut stack: Vec<ChangeHash> = from.to_vec();
        for hash in from {
            if !index.contains_key(hash) && !history.snapshot_heads.contains(hash) {
                return None;
            }
        }
        while let Some(hash) = stack.pop() {
            match index.get(&hash) {
                Some(&i) if !held[i] => {
                    held[i] = true;
                    stack.extend(changes[i].deps.iter().copied());
                }
                Some(_) => {}
                None => {
                    reached.insert(hash);
                }
            }
        }
        history
            .snapshot_heads
            .iter()
            .all(|h| reached.contains(h))
            .then_some(held)
    };
    let theirs = held_by(&msg.heads)?;
    // Automerge checks their summary's heads before anything else, whatever it sends.
    let since = match msg.have.first() {
        Some(have) if !have.last_sync.is_empty() => held_by(&have.last_sync)?,
        _ => vec![false; changes.len()],
    };
    let to_send: Vec<usize> = match msg.have.first() {
        _ if msg
            .flags
            .is_some_and(|f| f.contains(MessageFlags::READ_ONLY)) =>
        {
            Vec::new()
        }
        None => Vec::new(),
        Some(have) => {
            // Those missing from their summary, and everything depending on one of those.
            let mut dependents: HashMap<ChangeHash, Vec<usize>> = HashMap::new();
            let mut send = vec![false; changes.len()];
            let mut stack = Vec::new();
            for (i, change) in changes.iter().enumerate().filter(|(i, _)| !since[*i]) {
                for dep in &change.deps {
                    dependents.entry(*dep).or_default().push(i);
                }
                if !have.bloom.contains_hash(&change.hash) {
                    send[i] = true;
                    stack.push(i);
                }
            }
            while let Some(i) = stack.pop() {
                for &j in dependents.get(&changes[i].hash).into_iter().flatten() {
                    if !send[j] {
                        send[j] = true;
                        stack.push(j);
                    }
                }
            }
            (0..changes.len()).filter(|&i| send[i]).collect()
        }
    };
    if to_send.len() as u64 > total / 3 && msg.flags.is_some() {
        return None;
    }
    receive_first(msg, state);
    let ours: Vec<ChangeHash> = (0..changes.len())
        .filter(|&i| !theirs[i])
        .map(|i| changes[i].hash)
        .collect();
    let bloom = BloomFilter::from_hashes(ours.iter());
    let bytes = |i: usize| &stored[changes[i].bytes.clone()];
    let version = version_for(state);
    let chunks = match version {
        MessageVersion::V1 => to_send.iter().map(|&i| bytes(i).to_vec()).collect(),
        MessageVersion::V2 if to_send.is_empty() => Vec::new(),
        MessageVersion::V2 => vec![to_send
            .iter()
            .flat_map(|&i| bytes(i).iter().copied())
            .collect()],
    };
    state
        .sent_hashes
        .extend(to_send.iter().map(|&i| changes[i].hash));
    Some(sent(state, heads.to_vec(), bloom, chunks, version))
}

#[cfg(test)]
mod tests;

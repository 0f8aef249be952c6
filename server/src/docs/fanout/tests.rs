//! The shared receive and answer, sans I/O: a server document and clients that follow it with
//! full documents of their own, compared with what automerge does on its own.

use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};

use super::*;

/// A client following a document with a full copy of its own, as the web app does.
struct Client {
    doc: Automerge,
    state: sync::State,
}

impl Client {
    fn new() -> Self {
        Self {
            doc: Automerge::new(),
            state: sync::State::new(),
        }
    }

    /// Receives the server's message and returns its answer, encoded.
    fn answer(&mut self, msg: &[u8]) -> Vec<u8> {
        let msg = sync::Message::decode(msg).unwrap();
        self.doc.receive_sync_message(&mut self.state, msg).unwrap();
        self.doc
            .generate_sync_message(&mut self.state)
            .expect("a client answers every message with its heads")
            .encode()
    }
}

/// The server's sync state for a peer that may only read, or may write.
fn server_state(read_only: bool) -> sync::State {
    if read_only {
        sync::State::new_read_only()
    } else {
        sync::State::new()
    }
}

fn viewer_state() -> SharedState {
    Arc::new(sync::State::new_read_only())
}

fn type_into(doc: &mut Automerge, word: &str) {
    let mut tx = doc.transaction();
    let text = match tx.get(ROOT, "text").unwrap() {
        Some((_, id)) => id,
        None => tx
            .put_object(ROOT, "text", automerge::ObjType::Text)
            .unwrap(),
    };
    let len = tx.length(&text);
    tx.splice_text(&text, len, 0, word).unwrap();
    // A fixed time: with fixed actors (`fixed_actor`), the same changes and hashes every run.
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(0));
}

/// An actor id that is the same every run, for tests whose cases depend on change hashes.
fn fixed_actor(byte: u8) -> automerge::ActorId {
    automerge::ActorId::from(&[byte; 16][..])
}

/// One exchange: the server's message to the client, if it has one, and the client's
/// answer back, received through `memo`. Returns whether there was a message.
fn round_trip(
    server: &mut Automerge,
    state: &mut SharedState,
    client: &mut Client,
    memo: &mut ReceiveMemo,
) -> bool {
    let Some(msg) = server.generate_sync_message(Arc::make_mut(state)) else {
        return false;
    };
    let answer = client.answer(&msg.encode());
    let decoded = sync::Message::decode(&answer).unwrap();
    memo.receive(server, &mut Recent::default(), state, decoded, &answer)
        .unwrap();
    true
}

#[test]
fn acknowledgements_through_the_memo_leave_the_states_automerge_would() {
    let mut server = Automerge::new();
    type_into(&mut server, "The Global Compact ");
    // A reference viewer whose acknowledgements automerge receives itself, and three
    // viewers in step with it, in separate and in shared states.
    let mut reference = (sync::State::new_read_only(), Client::new());
    let shared = viewer_state();
    let mut viewers: Vec<(SharedState, Client)> = vec![
        (viewer_state(), Client::new()),
        (shared.clone(), Client::new()),
        (shared, Client::new()),
    ];
    let mut memo = ReceiveMemo::default();
    for word in ["for ", "safe, ", "orderly ", "and regular ", "migration"] {
        type_into(&mut server, word);
        loop {
            let (state, client) = &mut reference;
            let Some(msg) = server.generate_sync_message(state) else {
                for (state, _) in &mut viewers {
                    assert!(server.generate_sync_message(Arc::make_mut(state)).is_none());
                }
                break;
            };
            let msg = msg.encode();
            let answer = client.answer(&msg);
            server
                .receive_sync_message(state, sync::Message::decode(&answer).unwrap())
                .unwrap();
            // The viewers get the same message; the first two states generate it, the
            // third shares the second's.
            let mut sent = sync::State::clone(&viewers[1].0);
            let to_shared = server.generate_sync_message(&mut sent).unwrap().encode();
            assert_eq!(to_shared, msg);
            let sent = Arc::new(sent);
            let to_first = server
                .generate_sync_message(Arc::make_mut(&mut viewers[0].0))
                .unwrap();
            assert_eq!(to_first.encode(), msg);
            viewers[1].0 = sent.clone();
            viewers[2].0 = sent;
            for (state, client) in &mut viewers {
                let answer = client.answer(&msg);
                let decoded = sync::Message::decode(&answer).unwrap();
                memo.receive(&mut server, &mut Recent::default(), state, decoded, &answer)
                    .unwrap();
                assert_eq!(
                    **state, reference.0,
                    "the memo must leave automerge's state"
                );
            }
        }
    }
    // Each acknowledgement was received once (by automerge, or without its walk when it
    // acknowledged the current heads) and taken twice.
    assert!(memo.fast > 0);
    assert_eq!(memo.shared, 2 * (memo.computed + memo.fast));
    for (_, client) in &viewers {
        assert_eq!(client.doc.get_heads(), server.get_heads());
    }
}

#[test]
fn a_viewer_acknowledging_old_heads_still_gets_the_rest() {
    let mut server = Automerge::new();
    type_into(&mut server, "Action group 1");
    let mut memo = ReceiveMemo::default();
    let (mut ahead, mut behind) = (viewer_state(), viewer_state());
    let (mut va, mut vb) = (Client::new(), Client::new());
    while round_trip(&mut server, &mut ahead, &mut va, &mut memo) {}
    while round_trip(&mut server, &mut behind, &mut vb, &mut memo) {}
    // Both get the next change; the server moves on before their acknowledgements arrive.
    type_into(&mut server, ": commitments");
    let to_a = server
        .generate_sync_message(Arc::make_mut(&mut ahead))
        .unwrap()
        .encode();
    let to_b = server
        .generate_sync_message(Arc::make_mut(&mut behind))
        .unwrap()
        .encode();
    assert_eq!(to_a, to_b);
    let ack_a = va.answer(&to_a);
    let ack_b = vb.answer(&to_b);
    type_into(&mut server, " and means");
    memo = ReceiveMemo::default();
    for (state, ack) in [(&mut ahead, &ack_a), (&mut behind, &ack_b)] {
        let msg = sync::Message::decode(ack).unwrap();
        memo.receive(&mut server, &mut Recent::default(), state, msg, ack)
            .unwrap();
    }
    // Equal states in different `Arc`s: the second took the first's result.
    assert_eq!((memo.computed, memo.fast, memo.shared), (0, 1, 1));
    assert!(Arc::ptr_eq(&ahead, &behind));
    // The answer to the old acknowledgement carries the change they lack.
    while round_trip(&mut server, &mut behind, &mut vb, &mut memo) {}
    assert_eq!(vb.doc.get_heads(), server.get_heads());
    assert_eq!(
        vb.doc
            .text(vb.doc.get(ROOT, "text").unwrap().unwrap().1)
            .unwrap(),
        "Action group 1: commitments and means"
    );
}

#[test]
fn a_message_with_changes_is_received_by_automerge_and_clears_the_memo() {
    let mut server = Automerge::new();
    type_into(&mut server, "Means of implementation");
    let mut writer = Client::new();
    let mut state = Arc::new(sync::State::new());
    let mut memo = ReceiveMemo::default();
    while round_trip(&mut server, &mut state, &mut writer, &mut memo) {}
    assert!(!memo.by_identity.is_empty());
    type_into(&mut writer.doc, " and partnerships");
    let msg = writer.doc.generate_sync_message(&mut writer.state).unwrap();
    assert!(!msg.changes.is_empty());
    let raw = msg.clone().encode();
    memo.receive(&mut server, &mut Recent::default(), &mut state, msg, &raw)
        .unwrap();
    assert!(memo.by_identity.is_empty() && memo.by_value.is_empty());
    assert_eq!(server.get_heads(), writer.doc.get_heads());
}

#[test]
fn a_message_whose_changes_are_stored_is_received_without_loading() {
    let mut server = Automerge::new();
    // Enough changes that the writer sends its change, not the whole document.
    for word in ["Means ", "of ", "implementation"] {
        type_into(&mut server, word);
    }
    let mut writer = Client::new();
    let mut state = Arc::new(sync::State::new());
    let mut memo = ReceiveMemo::default();
    while round_trip(&mut server, &mut state, &mut writer, &mut memo) {}
    type_into(&mut writer.doc, " and partnerships");
    let msg = writer.doc.generate_sync_message(&mut writer.state).unwrap();
    let raw = msg.clone().encode();
    // As the actor does: the changes are stored and in the document, then the message is
    // received.
    let mut reference = sync::State::clone(&state);
    server
        .receive_sync_message(&mut reference, msg.clone())
        .unwrap();
    memo = ReceiveMemo::default();
    memo.receive(
        &mut server,
        &mut Recent::default(),
        &mut state,
        msg.clone(),
        &raw,
    )
    .unwrap();
    assert!(msg
        .changes
        .iter()
        .all(|c| automerge::Change::try_from(c).is_ok()));
    assert_eq!((memo.computed, memo.fast), (0, 1));
    assert_eq!(*state, reference);
    assert_eq!(server.get_heads(), writer.doc.get_heads());
}

#[test]
fn classes_hold_equal_states_only() {
    let mut server = Automerge::new();
    type_into(&mut server, "Follow-up and review");
    let mut sent = sync::State::new_read_only();
    server.generate_sync_message(&mut sent);
    let shared = viewer_state();
    let states = [
        Arc::new(sent),
        viewer_state(),
        shared.clone(),
        shared,
        Arc::new(sync::State::new()),
    ];
    let mut classes = Classes::default();
    for (i, s) in states.iter().enumerate() {
        classes.add(i as u64, s);
    }
    let mut found: Vec<Vec<u64>> = classes
        .into_classes()
        .into_iter()
        .map(|c| {
            let mut m = c.members;
            m.sort();
            m
        })
        .collect();
    found.sort();
    assert_eq!(found, vec![vec![0], vec![1, 2, 3], vec![4]]);
}

#[test]
fn a_peer_that_holds_our_heads_is_settled() {
    let mut server = Automerge::new();
    type_into(&mut server, "Agreed");
    let (mut state, mut client) = (viewer_state(), Client::new());
    let mut memo = ReceiveMemo::default();
    assert!(!settled(&server.get_heads(), &state));
    while round_trip(&mut server, &mut state, &mut client, &mut memo) {}
    assert!(settled(&server.get_heads(), &state));
    type_into(&mut server, " text");
    assert!(!settled(&server.get_heads(), &state));
}

/// `receive_acknowledgement` against automerge's receive, for acknowledgements from writers
/// and viewers, old and new clients, in every flag combination, of the current heads and of
/// older ones, with changes in flight (`sent_hashes`) and without.
///
/// The actors are fixed, so that the cases counted at the end come about every run: with
/// random ones, a Bloom filter's false positive now and then (about one in a hundred) left a
/// client's change out of the message that crosses ours in flight.
#[test]
fn the_fast_receive_leaves_the_state_automerge_would() {
    let mut checks = Checks::default();
    for read_only in [false, true] {
        let mut server = Automerge::new().with_actor(fixed_actor(1));
        checks.recent = Recent::default();
        type_into(&mut server, "Actionable commitments");
        let mut client = Client::new();
        client.doc = Automerge::new().with_actor(fixed_actor(2));
        let mut state = server_state(read_only);
        sync_checking(&mut server, &mut state, &mut client, &mut checks);
        for word in [": one", ", two", ", three"] {
            type_into(&mut server, word);
            sync_checking(&mut server, &mut state, &mut client, &mut checks);
            // Two changes out before the first acknowledgement comes back.
            type_into(&mut server, " and");
            let first = server.generate_sync_message(&mut state).unwrap();
            type_into(&mut server, " more");
            let second = server.generate_sync_message(&mut state).unwrap();
            let acks = [first, second].map(|m| client.answer(&m.encode()));
            for ack in acks {
                let ack = sync::Message::decode(&ack).unwrap();
                checks.check(&server, &state, &ack);
                server.receive_sync_message(&mut state, ack).unwrap();
            }
            sync_checking(&mut server, &mut state, &mut client, &mut checks);
            if !read_only {
                type_into(&mut client.doc, word);
                sync_checking(&mut server, &mut state, &mut client, &mut checks);
                // Both type at once: the client's change crosses one of ours in flight.
                type_into(&mut server, " too");
                let ours = server.generate_sync_message(&mut state).unwrap();
                type_into(&mut client.doc, "!");
                let theirs = client.doc.generate_sync_message(&mut client.state).unwrap();
                let theirs = sync::Message::decode(&theirs.encode()).unwrap();
                checks.check(&server, &state, &theirs);
                server.receive_sync_message(&mut state, theirs).unwrap();
                client
                    .doc
                    .receive_sync_message(&mut client.state, ours)
                    .unwrap();
                sync_checking(&mut server, &mut state, &mut client, &mut checks);
            }
            assert_eq!(client.doc.get_heads(), server.get_heads());
        }
    }
    // An older acknowledgement per word and mode, and the current ones; writers' changes, with
    // one of ours in flight for some.
    let counts = (
        checks.current,
        checks.older,
        checks.in_flight,
        checks.with_changes,
        checks.with_changes_in_flight,
    );
    assert!(checks.older >= 6, "{counts:?}");
    assert!(checks.current >= 12, "{counts:?}");
    assert!(checks.in_flight >= 12, "{counts:?}");
    assert!(checks.with_changes >= 6, "{counts:?}");
    assert!(checks.with_changes_in_flight >= 3, "{counts:?}");
}

/// How many acknowledgements were compared, of what kind.
#[derive(Default)]
struct Checks {
    /// The server document's recent changes, followed at every acknowledgement.
    recent: Recent,
    current: usize,
    older: usize,
    in_flight: usize,
    /// Messages with changes, received once the server holds them.
    with_changes: usize,
    with_changes_in_flight: usize,
}

impl Checks {
    /// If `receive_acknowledgement` applies to `message`, compares what it does with what
    /// automerge does, with each flag combination.
    fn check(&mut self, server: &Automerge, state: &sync::State, message: &sync::Message) {
        if !message.changes.is_empty() {
            self.check_held(server, state, message);
            return;
        }
        self.recent.follow(server);
        if !acknowledges_known_heads(server, &mut self.recent, message) {
            return;
        }
        for flags in [None, Some(0x80u8), Some(0x80 | 0b001), Some(0x80 | 0b110)] {
            let mut message = message.clone();
            if let Some(bits) = flags {
                message.flags = Some(flag_byte(bits));
            }
            let mut ours = state.clone();
            receive_acknowledgement(server, &self.recent, &mut ours, message.clone());
            let mut theirs = state.clone();
            server
                .clone()
                .receive_sync_message(&mut theirs, message)
                .unwrap();
            assert_eq!(ours, theirs, "flags {flags:?}");
        }
        if message.heads == server.get_heads() {
            self.current += 1;
        } else {
            self.older += 1;
        }
        self.in_flight += usize::from(!state.sent_hashes.is_empty());
    }
}

impl Checks {
    /// A message with changes, as the actor receives it once it stored them: compares what
    /// `receive_acknowledgement` does with what automerge does, with each flag combination.
    fn check_held(&mut self, server: &Automerge, state: &sync::State, message: &sync::Message) {
        let mut held = server.clone();
        held.receive_sync_message(&mut state.clone(), message.clone())
            .unwrap();
        let mut recent = Recent::default();
        assert!(holds_every_change(&held, message));
        assert!(!holds_every_change(server, message));
        assert!(heads_known(&held, &mut recent, &message.heads));
        for flags in [None, Some(0x80u8), Some(0x80 | 0b001), Some(0x80 | 0b110)] {
            let mut message = message.clone();
            if let Some(bits) = flags {
                message.flags = Some(flag_byte(bits));
            }
            let mut ours = state.clone();
            receive_acknowledgement(&held, &recent, &mut ours, message.clone());
            let mut theirs = state.clone();
            held.clone()
                .receive_sync_message(&mut theirs, message)
                .unwrap();
            assert_eq!(ours, theirs, "flags {flags:?}");
        }
        self.with_changes += 1;
        self.with_changes_in_flight += usize::from(!state.sent_hashes.is_empty());
    }
}

/// Syncs until quiet, checking every message from the client on the way.
fn sync_checking(
    server: &mut Automerge,
    state: &mut sync::State,
    client: &mut Client,
    checks: &mut Checks,
) {
    for _ in 0..20 {
        let to_client = server.generate_sync_message(state);
        if let Some(msg) = &to_client {
            client
                .doc
                .receive_sync_message(&mut client.state, msg.clone())
                .unwrap();
        }
        let Some(answer) = client.doc.generate_sync_message(&mut client.state) else {
            if to_client.is_none() {
                return;
            }
            continue;
        };
        let message = sync::Message::decode(&answer.encode()).unwrap();
        checks.check(server, state, &message);
        server.receive_sync_message(state, message).unwrap();
    }
    panic!("the peers did not settle");
}

/// Message flags as they arrive on the wire: automerge's flag bytes are a length-prefixed
/// list ending in the bitfield (its high bit set).
fn flag_byte(bits: u8) -> MessageFlags {
    let mut with_flags = sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: sync::ChunkList::empty(),
        flags: None,
        version: sync::MessageVersion::V1,
    }
    .encode();
    with_flags.extend([2, 0x02, bits]);
    sync::Message::decode(&with_flags)
        .unwrap()
        .flags
        .expect("flags decode")
}

/// How many generations `generate` took on, and how many it left to automerge.
#[derive(Debug, Default)]
struct Generations {
    fast: usize,
    fast_with_changes: usize,
    /// Fast generations that carried the whole document.
    fast_whole: usize,
    left: usize,
}

impl Generations {
    /// Generates the server's next message as automerge does, and checks that `generate`
    /// either leaves it to automerge (touching nothing) or gives the same message and state.
    fn generate(
        &mut self,
        server: &Automerge,
        recent: &mut Recent,
        state: &mut sync::State,
    ) -> Option<sync::Message> {
        let mut ours = state.clone();
        let fast = generate(server, recent, &mut ours);
        let theirs = server.generate_sync_message(state);
        match fast {
            None => {
                self.left += 1;
            }
            Some(message) => {
                assert_eq!(message, theirs, "the message automerge generates");
                assert_eq!(ours, *state, "the state automerge leaves");
                self.fast += 1;
                self.fast_whole += usize::from(
                    message
                        .as_ref()
                        .and_then(|m| m.changes.iter().next())
                        .is_some_and(|chunk| chunk[8] == crate::sync::chunks::DOCUMENT),
                );
                self.fast_with_changes +=
                    usize::from(message.is_some_and(|m| !m.changes.is_empty()));
            }
        }
        theirs
    }
}

/// A client's answer as the server receives it; an old client (before capabilities) sends no
/// flags and gets version 1 messages.
fn as_received(answer: sync::Message, old_client: bool) -> sync::Message {
    let mut answer = sync::Message::decode(&answer.encode()).unwrap();
    if old_client {
        answer.flags = None;
    }
    answer
}

/// One message from the server (if it has one) and the client's answer (if it has one).
/// Returns whether anything moved.
fn exchange(
    server: &mut Automerge,
    recent: &mut Recent,
    state: &mut sync::State,
    client: &mut Client,
    old_client: bool,
    gens: &mut Generations,
) -> bool {
    let to_client = gens.generate(server, recent, state);
    if let Some(msg) = &to_client {
        let msg = sync::Message::decode(&msg.clone().encode()).unwrap();
        client
            .doc
            .receive_sync_message(&mut client.state, msg)
            .unwrap();
    }
    let answer = client.doc.generate_sync_message(&mut client.state);
    let moved = to_client.is_some() || answer.is_some();
    if let Some(answer) = answer {
        server
            .receive_sync_message(state, as_received(answer, old_client))
            .unwrap();
    }
    moved
}

/// `generate` against automerge's `generate_sync_message`, for writers and viewers, old and
/// new clients, a first contact from a client that holds nothing, peers in step, peers with several messages in flight, peers held back over
/// several commits (as a fan-out holds a peer that has not answered), and writers whose own
/// changes the server has not seen yet (their Bloom filter is not empty).
#[test]
fn the_fast_generate_gives_what_automerge_would() {
    let mut gens = Generations::default();
    for read_only in [true, false] {
        for old_client in [false, true] {
            let mut server = Automerge::new();
            let mut recent = Recent::default();
            type_into(&mut server, "Means of implementation");
            let mut client = Client::new();
            let mut state = server_state(read_only);
            let settle = |server: &mut Automerge,
                          recent: &mut Recent,
                          state: &mut sync::State,
                          client: &mut Client,
                          gens: &mut Generations| {
                for _ in 0..20 {
                    if !exchange(server, recent, state, client, old_client, gens) {
                        return;
                    }
                }
                panic!("the peers did not settle");
            };
            // The client speaks first, as automerge-repo's request does: it holds nothing.
            let hello = client.doc.generate_sync_message(&mut client.state).unwrap();
            server
                .receive_sync_message(&mut state, as_received(hello, old_client))
                .unwrap();
            settle(&mut server, &mut recent, &mut state, &mut client, &mut gens);
            for (i, word) in [": capacity", " building,", " finance,", " technology"]
                .into_iter()
                .enumerate()
            {
                // In step.
                type_into(&mut server, word);
                settle(&mut server, &mut recent, &mut state, &mut client, &mut gens);
                // Two messages in flight before the first answer.
                type_into(&mut server, " and");
                let first = gens.generate(&server, &mut recent, &mut state);
                type_into(&mut server, " more");
                let second = gens.generate(&server, &mut recent, &mut state);
                for msg in [first, second].into_iter().flatten() {
                    let answer = client.answer(&msg.encode());
                    let answer = sync::Message::decode(&answer).unwrap();
                    server
                        .receive_sync_message(&mut state, as_received(answer, old_client))
                        .unwrap();
                }
                settle(&mut server, &mut recent, &mut state, &mut client, &mut gens);
                // Held back: the server commits three times before the peer hears of any.
                for extra in [" (a)", " (b)", " (c)"] {
                    type_into(&mut server, extra);
                    if i % 2 == 0 {
                        // The document moves on with nobody generating in between.
                        recent.follow(&server);
                    }
                }
                settle(&mut server, &mut recent, &mut state, &mut client, &mut gens);
                if !read_only {
                    // The writer types while the server types too: crossing changes.
                    type_into(&mut client.doc, word);
                    type_into(&mut server, "!");
                    settle(&mut server, &mut recent, &mut state, &mut client, &mut gens);
                }
                assert_eq!(client.doc.get_heads(), server.get_heads());
                // The bound that spares counting the changes is a lower bound.
                let bound = at_least(&server, &server.get_heads());
                assert!(bound > 0 && bound <= server.get_changes_meta(&[]).len());
            }
        }
    }
    // Most generations were the fast one, many of them with changes, and the first contact of
    // every new client with the whole document; old clients' first contact and the like were
    // left to automerge.
    assert!(gens.fast > 3 * gens.left, "{gens:?}");
    assert!(gens.fast_with_changes >= 40, "{gens:?}");
    assert!(gens.fast_whole >= 2, "{gens:?}");
    assert!(gens.left > 0, "{gens:?}");
}

/// `Recent` keeps a bounded history: heads older than what it keeps are not found, and
/// `generate` leaves those peers to automerge.
#[test]
fn recent_forgets_old_steps() {
    let mut server = Automerge::new();
    let mut recent = Recent::default();
    type_into(&mut server, "x");
    recent.follow(&server);
    let first = server.get_heads();
    assert!(recent.since(&first).is_some_and(|mut c| c.next().is_none()));
    for _ in 0..RECENT_CHANGES + 10 {
        type_into(&mut server, "y");
        recent.follow(&server);
    }
    assert!(recent.since(&first).is_none());
    let last = server.get_heads();
    assert!(recent.since(&last).is_some());
    assert!(recent.held <= RECENT_CHANGES);
}

/// A document stored as a snapshot with changes after it: the document, its stored form, and
/// the snapshot's heads.
fn stored_document() -> (Automerge, Vec<u8>, Vec<ChangeHash>) {
    let mut server = Automerge::new();
    for word in ["Strengthen ", "migration ", "data"] {
        type_into(&mut server, word);
    }
    let snapshot = server.save();
    let before = server.get_heads();
    for word in [" collection", " by 2030"] {
        type_into(&mut server, word);
    }
    let stored = [snapshot, server.save_after(&before)].concat();
    (server, stored, before)
}

/// `first_contact` against automerge's receive and generate: for viewers and writers, a
/// document stored as a snapshot with changes after it, the same message but for the
/// deviations its documentation names; the client ends with the same document, and the
/// exchange goes on from there as it would have.
#[test]
fn the_first_contact_answer_is_automerges_but_for_its_form() {
    let (mut server, stored, _) = stored_document();
    let heads = crate::sync::chunks::heads(&stored).unwrap();
    assert_eq!(heads, server.get_heads());

    for read_only in [true, false] {
        let mut client = Client::new();
        let hello = client.doc.generate_sync_message(&mut client.state).unwrap();
        let hello = sync::Message::decode(&hello.encode()).unwrap();

        let mut theirs = server_state(read_only);
        server
            .receive_sync_message(&mut theirs, hello.clone())
            .unwrap();
        let expected = server.generate_sync_message(&mut theirs).unwrap();

        let mut ours = server_state(read_only);
        let answer = first_contact(&hello, &heads, &stored, &mut ours).unwrap();
        assert_eq!(answer.heads, expected.heads);
        assert_eq!(answer.need, expected.need);
        assert_eq!(answer.flags, expected.flags);
        assert_eq!(answer.version, expected.version);
        assert!(answer.have.is_empty());
        assert!(!theirs.sent_hashes.is_empty() && ours.sent_hashes.is_empty());
        let mut without_sent = theirs.clone();
        without_sent.sent_hashes.clear();
        assert_eq!(ours, without_sent, "the state automerge leaves");

        // The client loads it to the same document and answers with the same heads.
        let mut other = Client::new();
        other.doc.generate_sync_message(&mut other.state).unwrap();
        let reply = client.answer(&answer.encode());
        let expected_reply = other.answer(&expected.encode());
        assert_eq!(client.doc.get_heads(), server.get_heads());
        assert_eq!(client.doc.save(), other.doc.save());
        assert_eq!(
            sync::Message::decode(&reply).unwrap().heads,
            sync::Message::decode(&expected_reply).unwrap().heads
        );

        // From there both exchanges go the same way: the next change reaches the client.
        server
            .receive_sync_message(&mut ours, sync::Message::decode(&reply).unwrap())
            .unwrap();
        let mut next = server.clone();
        type_into(&mut next, ".");
        let msg = next.generate_sync_message(&mut ours).unwrap();
        client.answer(&msg.encode());
        assert_eq!(client.doc.get_heads(), next.get_heads());
    }

    // Not first contact: a peer with heads, one that declares itself read-only, an old client
    // without flags; nor a document with nothing stored. The state is left as it was.
    let hello = {
        let mut client = Client::new();
        let hello = client.doc.generate_sync_message(&mut client.state).unwrap();
        sync::Message::decode(&hello.encode()).unwrap()
    };
    let mut with_heads = hello.clone();
    with_heads.heads = server.get_heads();
    let mut read_only = hello.clone();
    read_only.flags = Some(flag_byte(0x80 | MessageFlags::READ_ONLY));
    let mut old = hello.clone();
    old.flags = None;
    for (msg, heads) in [
        (&with_heads, &heads[..]),
        (&read_only, &heads[..]),
        (&old, &heads[..]),
        (&hello, &[][..]),
    ] {
        let mut state = server_state(true);
        assert!(first_contact(msg, heads, &stored, &mut state).is_none());
        assert_eq!(state, server_state(true));
    }
    // Nor a peer already answered.
    let mut state = server_state(true);
    first_contact(&hello, &heads, &stored, &mut state).unwrap();
    assert!(first_contact(&hello, &heads, &stored, &mut state).is_none());
}

/// A client that followed `server` to its current heads and kept its sync state with it, as
/// automerge-repo keeps it for a server that names a storage id: only the heads they shared.
fn returning_client(server: &Automerge) -> Client {
    let mut client = Client::new();
    let mut server = server.clone();
    let mut state = sync::State::new();
    let (mut recent, mut gens) = (Recent::default(), Generations::default());
    while exchange(
        &mut server,
        &mut recent,
        &mut state,
        &mut client,
        false,
        &mut gens,
    ) {}
    assert_eq!(client.doc.get_heads(), server.get_heads());
    client.state = sync::State::decode(&client.state.encode()).unwrap();
    assert_eq!(client.state.shared_heads, server.get_heads());
    client
}

/// `returning`'s answer to `msg` (from the document `server`, stored as `stored`) in a new
/// state for a peer that may only read, or may write, checked against automerge's receive and
/// generate of it: the same message but for the order of its changes, and the same state.
/// Returns our answer and state, then automerge's.
fn returning_as_automerge(
    server: &Automerge,
    stored: &[u8],
    msg: &sync::Message,
    read_only: bool,
) -> (sync::Message, sync::State, sync::Message, sync::State) {
    let history = crate::sync::chunks::history(stored).unwrap();
    let heads = history.heads();
    let mut theirs = server_state(read_only);
    let mut automerges = server.clone();
    automerges
        .receive_sync_message(&mut theirs, msg.clone())
        .unwrap();
    let expected = automerges.generate_sync_message(&mut theirs).unwrap();

    let mut ours = server_state(read_only);
    let answer =
        returning(msg, &history, &heads, stored, &mut ours).expect("answered before the load");
    assert_eq!(answer.heads, expected.heads);
    assert_eq!(answer.need, expected.need);
    assert_eq!(answer.have, expected.have);
    assert_eq!(answer.flags, expected.flags);
    assert_eq!(answer.version, expected.version);
    assert_eq!(carried(&answer), carried(&expected));
    assert_eq!(ours, theirs, "the state automerge leaves");
    (answer, ours, expected, theirs)
}

/// `returning` to a device in step, against automerge's receive and generate: for viewers and
/// writers, a device that kept its sync state and one that did not, an old client and one
/// that declares itself read-only, the same message and state; the exchange goes on from there
/// as it would have, and the next change reaches the device. A device whose heads or summary
/// are the snapshot's is answered as automerge answers it too; anything else is left to the
/// loaded document, the state untouched.
#[test]
fn the_answer_to_a_device_in_step_is_automerges() {
    let (server, stored, before) = stored_document();
    let history = crate::sync::chunks::history(&stored).unwrap();
    let heads = history.heads();
    assert_eq!(heads, server.get_heads());

    let hello = |client: &mut Client, flags: Option<Option<MessageFlags>>| {
        let msg = client.doc.generate_sync_message(&mut client.state).unwrap();
        let mut msg = sync::Message::decode(&msg.encode()).unwrap();
        if let Some(flags) = flags {
            msg.flags = flags;
        }
        msg
    };
    let kept = hello(&mut returning_client(&server), None);
    assert_eq!(kept.have[0].last_sync, heads);
    let mut fresh_client = returning_client(&server);
    fresh_client.state = sync::State::new();
    let fresh = hello(&mut fresh_client, None);
    assert!(fresh.have[0].last_sync.is_empty());
    let old = hello(&mut returning_client(&server), Some(None));
    let declared_read_only = hello(
        &mut returning_client(&server),
        Some(Some(flag_byte(0x80 | MessageFlags::READ_ONLY))),
    );

    for read_only in [true, false] {
        for msg in [&kept, &fresh, &old, &declared_read_only] {
            let (answer, mut ours, expected, mut theirs) =
                returning_as_automerge(&server, &stored, msg, read_only);
            assert_eq!(answer, expected, "the message automerge generates");

            // The client has nothing to say to it, as to automerge's.
            let mut client = returning_client(&server);
            client.state.shared_heads.clone_from(&msg.have[0].last_sync);
            hello(&mut client, None);
            let reply = client
                .doc
                .receive_sync_message(&mut client.state, answer.clone())
                .map(|()| client.doc.generate_sync_message(&mut client.state))
                .unwrap();
            assert!(reply.is_none());

            // The next change reaches it, in the message automerge would send.
            let mut next = server.clone();
            type_into(&mut next, ".");
            let ours_next = next.generate_sync_message(&mut ours);
            let theirs_next = next.generate_sync_message(&mut theirs);
            assert_eq!(ours_next, theirs_next);
            if msg
                .flags
                .is_some_and(|f| f.contains(MessageFlags::READ_ONLY))
            {
                // Automerge sends no changes to a peer that says it would ignore them.
                continue;
            }
            let msg = sync::Message::decode(&ours_next.unwrap().encode()).unwrap();
            client
                .doc
                .receive_sync_message(&mut client.state, msg)
                .unwrap();
            assert_eq!(client.doc.get_heads(), next.get_heads());
        }
    }

    // A device at the snapshot's heads: answered as automerge answers it. Not a device whose
    // summary starts from the snapshot's heads (it kept its state from before the last
    // changes, and had them from elsewhere): its summary leaves out more than a third of this
    // short document, and automerge sends it all. Nor a device ahead, one asking for a change,
    // one sending changes; nor a document with nothing stored.
    let mut behind = kept.clone();
    behind.heads.clone_from(&before);
    let mut ahead_doc = server.clone();
    type_into(&mut ahead_doc, "!");
    let mut ahead = kept.clone();
    ahead.heads = ahead_doc.get_heads();
    let mut asking = kept.clone();
    asking.need.clone_from(&before);
    let mut sending = kept.clone();
    sending.changes = sync::ChunkList::from(vec![ahead_doc.save_after(&heads)]);
    let mut older_summary = kept.clone();
    older_summary.have[0].last_sync.clone_from(&before);
    returning_as_automerge(&server, &stored, &behind, true);
    let mut theirs = server_state(true);
    let mut automerges = server.clone();
    automerges
        .receive_sync_message(&mut theirs, older_summary.clone())
        .unwrap();
    let whole = automerges.generate_sync_message(&mut theirs).unwrap();
    assert!(whole
        .changes
        .iter()
        .next()
        .is_some_and(|chunk| chunk[8] == crate::sync::chunks::DOCUMENT));
    let nothing = crate::sync::chunks::History::default();
    for (msg, history, heads) in [
        (&older_summary, &history, &heads[..]),
        (&ahead, &history, &heads[..]),
        (&asking, &history, &heads[..]),
        (&sending, &history, &heads[..]),
        (&kept, &nothing, &[][..]),
    ] {
        let mut state = server_state(true);
        assert!(returning(msg, history, heads, &stored, &mut state).is_none());
        assert_eq!(state, server_state(true));
    }
    // Nor a peer already answered; and a device in step is not taken for one that holds
    // nothing.
    let mut state = server_state(true);
    returning(&kept, &history, &heads, &stored, &mut state).unwrap();
    assert!(returning(&kept, &history, &heads, &stored, &mut state).is_none());
    let mut state = server_state(true);
    assert!(first_contact(&kept, &heads, &stored, &mut state).is_none());
}

/// The hashes of the changes a message carries.
fn carried(msg: &sync::Message) -> HashSet<ChangeHash> {
    let joined: Vec<u8> = msg.changes.iter().flatten().copied().collect();
    crate::sync::chunks::history(&joined)
        .unwrap()
        .changes
        .iter()
        .map(|c| c.hash)
        .collect()
}

/// A document stored as a snapshot and the changes after it, among them two writers'
/// concurrent ones: the document, its stored form, and the heads after each stored step.
fn stored_with_increments(before_snapshot: usize) -> (Automerge, Vec<u8>, Vec<Vec<ChangeHash>>) {
    let mut server = Automerge::new();
    for i in 0..before_snapshot {
        type_into(&mut server, &format!("w{i} "));
    }
    let snapshot = server.save();
    let mut steps = vec![server.get_heads()];
    for word in ["data", " collection"] {
        type_into(&mut server, word);
        steps.push(server.get_heads());
    }
    let mut a = server.fork();
    let mut b = server.fork();
    type_into(&mut a, " by");
    type_into(&mut b, " 2030");
    steps.push(a.get_heads());
    server.merge(&mut a).unwrap();
    server.merge(&mut b).unwrap();
    steps.push(server.get_heads());
    type_into(&mut server, ".");
    let stored = [snapshot, server.save_after(&steps[0])].concat();
    (server, stored, steps)
}

/// `returning` to devices behind, against automerge's receive and generate: for viewers and
/// writers, devices that
/// stopped at the snapshot, at a stored step, or on one side of two writers' concurrent
/// changes; with their sync state kept and without; an old client and one that declares itself
/// read-only. The same message but for the order of its changes, and the same state; the
/// device then holds the document, and the exchange goes on as it would have. Anything else is
/// left to the loaded document, the state untouched.
#[test]
fn the_answer_to_a_device_behind_is_automerges_but_for_its_order() {
    let (server, stored, steps) = stored_with_increments(30);
    let history = crate::sync::chunks::history(&stored).unwrap();
    let heads = history.heads();
    assert_eq!(heads, server.get_heads());

    // `kept`: the sync state the device kept, if any: from where it stopped, or from the
    // snapshot (it had the changes since from elsewhere).
    #[derive(Clone, Copy)]
    enum Kept {
        Here,
        AtSnapshot,
        Nothing,
    }
    let hello = |at: &[ChangeHash], kept: Kept, flags: Option<Option<MessageFlags>>| {
        let mut client = match kept {
            Kept::AtSnapshot => {
                let mut client = returning_client(&server.fork_at(&steps[0]).unwrap());
                let since = server.fork_at(at).unwrap().save_after(&steps[0]);
                client.doc.load_incremental(&since).unwrap();
                client
            }
            _ => returning_client(&server.fork_at(at).unwrap()),
        };
        if let Kept::Nothing = kept {
            client.state = sync::State::new();
        }
        let msg = client.doc.generate_sync_message(&mut client.state).unwrap();
        let mut msg = sync::Message::decode(&msg.encode()).unwrap();
        if let Some(flags) = flags {
            msg.flags = flags;
        }
        (client, msg)
    };
    let mut answered = 0;
    for at in &steps {
        for (kept, flags) in [
            (Kept::Here, None),
            (Kept::AtSnapshot, None),
            (Kept::Nothing, None),
            (Kept::Here, Some(None)),
            (
                Kept::Here,
                Some(Some(flag_byte(0x80 | MessageFlags::READ_ONLY))),
            ),
        ] {
            for read_only in [true, false] {
                let (mut client, msg) = hello(at, kept, flags);
                let (answer, mut ours, expected, _) =
                    returning_as_automerge(&server, &stored, &msg, read_only);
                answered += 1;

                // The device takes it as automerge's answer, and the exchange goes on.
                let mut other = client.doc.fork();
                let mut other_state = client.state.clone();
                other
                    .receive_sync_message(&mut other_state, expected)
                    .unwrap();
                let reply = client.answer(&answer.encode());
                if msg
                    .flags
                    .is_some_and(|f| f.contains(MessageFlags::READ_ONLY))
                {
                    continue;
                }
                assert_eq!(client.doc.get_heads(), other.get_heads());
                let mut next = server.clone();
                next.receive_sync_message(&mut ours, sync::Message::decode(&reply).unwrap())
                    .unwrap();
                type_into(&mut next, "!");
                while let Some(msg) = next.generate_sync_message(&mut ours) {
                    let reply = client.answer(&msg.encode());
                    next.receive_sync_message(&mut ours, sync::Message::decode(&reply).unwrap())
                        .unwrap();
                    if client.doc.get_heads() == next.get_heads() {
                        break;
                    }
                }
                assert_eq!(client.doc.get_heads(), next.get_heads());
            }
        }
    }
    assert_eq!(answered, steps.len() * 10);

    // A device whose heads are ours but whose summary says it has nothing since the snapshot
    // is sent what the summary lacks, as automerge sends it. Not one ahead, one naming a
    // change inside the snapshot, one whose summary starts from such a change, one sending
    // changes, one asking; a device that lacks more than a third of the changes (automerge
    // sends it the whole document); nor a peer already answered.
    let (_, at_snapshot) = hello(&steps[0], Kept::Here, None);
    let mut our_heads_old_summary = at_snapshot.clone();
    our_heads_old_summary.heads.clone_from(&heads);
    let mut ahead = at_snapshot.clone();
    let mut ahead_doc = server.clone();
    type_into(&mut ahead_doc, "?");
    ahead.heads = ahead_doc.get_heads();
    let inside = server.get_changes(&[])[3].hash();
    let mut inside_heads = at_snapshot.clone();
    inside_heads.heads = vec![inside];
    let mut inside_summary = at_snapshot.clone();
    inside_summary.have[0].last_sync = vec![inside];
    let mut inside_summary_read_only = inside_summary.clone();
    inside_summary_read_only.flags = Some(flag_byte(0x80 | MessageFlags::READ_ONLY));
    let mut sending = at_snapshot.clone();
    sending.changes = sync::ChunkList::from(vec![ahead_doc.save_after(&heads)]);
    let mut asking = at_snapshot.clone();
    asking.need.clone_from(&heads);
    returning_as_automerge(&server, &stored, &our_heads_old_summary, false);
    for msg in [
        &ahead,
        &inside_heads,
        &inside_summary,
        &inside_summary_read_only,
        &sending,
        &asking,
    ] {
        let mut state = server_state(true);
        assert!(returning(msg, &history, &heads, &stored, &mut state).is_none());
        assert_eq!(state, server_state(true));
    }
    let (small, small_stored, small_steps) = stored_with_increments(3);
    let small_history = crate::sync::chunks::history(&small_stored).unwrap();
    let client = returning_client(&small.fork_at(&small_steps[0]).unwrap());
    let mut state = client.state.clone();
    let far_behind = client
        .doc
        .clone()
        .generate_sync_message(&mut state)
        .unwrap();
    let mut state = server_state(true);
    let small_heads = small_history.heads();
    assert!(returning(
        &far_behind,
        &small_history,
        &small_heads,
        &small_stored,
        &mut state
    )
    .is_none());
    assert_eq!(state, server_state(true));
    let mut state = server_state(true);
    returning(&at_snapshot, &history, &heads, &stored, &mut state).unwrap();
    assert!(returning(&at_snapshot, &history, &heads, &stored, &mut state).is_none());

    // Nor a device that holds only one side of the snapshot's two heads: a writer who typed on
    // one side, offline, and whose change was stored after the snapshot.
    let mut split = Automerge::new();
    for i in 0..20 {
        type_into(&mut split, &format!("w{i} "));
    }
    let mut one = split.fork();
    let mut other = split.fork();
    type_into(&mut one, "one");
    type_into(&mut other, "other");
    split.merge(&mut one).unwrap();
    split.merge(&mut other).unwrap();
    let snapshot = split.save();
    let at_snapshot = split.get_heads();
    assert_eq!(at_snapshot.len(), 2);
    type_into(&mut one, " more");
    split.merge(&mut one).unwrap();
    let stored = [snapshot, split.save_after(&at_snapshot)].concat();
    let history = crate::sync::chunks::history(&stored).unwrap();
    let heads = history.heads();
    assert_eq!(heads, split.get_heads());
    let mut client = returning_client(&one);
    let one_side = client.doc.generate_sync_message(&mut client.state).unwrap();
    let mut state = server_state(true);
    assert!(returning(&one_side, &history, &heads, &stored, &mut state).is_none());
    assert_eq!(state, server_state(true));
}

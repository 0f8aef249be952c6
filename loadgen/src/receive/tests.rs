//! `receive_sync_message` against automerge's own receive, message by message, with a server
//! and three writers typing into one text at once over queues that deliver late.

use std::collections::VecDeque;

use automerge::sync::{self, MessageFlags, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjType, ReadDoc, ROOT};

use super::receive_sync_message;

/// An actor id that is the same every run, so that the same changes and hashes come about.
fn fixed_actor(byte: u8) -> ActorId {
    ActorId::from(&[byte; 16][..])
}

fn type_into(doc: &mut Automerge, word: &str) {
    let mut tx = doc.transaction();
    let text = match tx.get(ROOT, "text").unwrap() {
        Some((_, id)) => id,
        None => tx.put_object(ROOT, "text", ObjType::Text).unwrap(),
    };
    let len = tx.length(&text);
    tx.splice_text(&text, len, 0, word).unwrap();
    tx.commit_with(CommitOptions::default().with_time(0));
}

/// How many received messages were compared, of what kind.
#[derive(Debug, Default)]
struct Cases {
    compared: usize,
    /// Messages whose changes were loaded.
    loaded: usize,
    /// Sent hashes trimmed to some, but not all.
    trimmed_some: usize,
    /// Sent hashes trimmed to none, from heads older than ours.
    trimmed_all_from_older: usize,
    /// Messages naming heads we do not hold.
    unknown_heads: usize,
    /// Messages from a peer that holds nothing.
    empty_heads: usize,
}

/// Receives `bytes` with `receive_sync_message`, after checking that it leaves the document
/// and the state as automerge's receive does, with the message's own flags and three others.
fn receive_checked(doc: &mut Automerge, state: &mut sync::State, bytes: &[u8], cases: &mut Cases) {
    let message = sync::Message::decode(bytes).unwrap();
    let flag_sets = [
        None,
        Some(MessageFlags::new()),
        Some(flags(&[
            MessageFlags::SUPPORTS_SYNC_RESET,
            MessageFlags::SYNC_RESET,
        ])),
        Some(flags(&[MessageFlags::READ_ONLY])),
    ];
    for flag_set in std::iter::once(message.flags).chain(flag_sets) {
        let mut message = message.clone();
        message.flags = flag_set;
        let (mut ours, mut our_state) = (doc.clone(), state.clone());
        receive_sync_message(&mut ours, &mut our_state, message.clone()).unwrap();
        let (mut theirs, mut their_state) = (doc.clone(), state.clone());
        theirs
            .receive_sync_message(&mut their_state, message)
            .unwrap();
        assert_eq!(our_state, their_state, "flags {flag_set:?}");
        assert_eq!(ours.get_heads(), theirs.get_heads());
        assert_eq!(ours.get_missing_deps(&[]), theirs.get_missing_deps(&[]));
    }

    let sent_before = state.sent_hashes.len();
    receive_sync_message(doc, state, message.clone()).unwrap();
    cases.compared += 1;
    cases.loaded += usize::from(!message.changes.is_empty());
    let sent_after = state.sent_hashes.len();
    cases.trimmed_some += usize::from(sent_after > 0 && sent_after < sent_before);
    cases.trimmed_all_from_older +=
        usize::from(sent_before > 0 && sent_after == 0 && message.heads != doc.get_heads());
    cases.unknown_heads += usize::from(
        message
            .heads
            .iter()
            .any(|h| doc.get_change_meta_by_hash(h).is_none()),
    );
    cases.empty_heads += usize::from(message.heads.is_empty());
}

fn flags(bits: &[u8]) -> MessageFlags {
    let mut flags = MessageFlags::new();
    for bit in bits {
        flags.set(*bit);
    }
    flags
}

/// A peer and its sync state with the other end, and the messages on their way to it.
struct Peer {
    doc: Automerge,
    state: sync::State,
    inbox: VecDeque<Vec<u8>>,
}

impl Peer {
    fn new(doc: Automerge) -> Self {
        Self {
            doc,
            state: sync::State::new(),
            inbox: VecDeque::new(),
        }
    }
}

#[test]
fn it_leaves_what_automerges_receive_leaves() {
    let mut server = Automerge::new().with_actor(fixed_actor(1));
    type_into(&mut server, "Means of implementation");
    // The server's side of each writer's connection: its state, and the writer's messages
    // on their way to it.
    let mut at_server: Vec<Peer> = (0..3).map(|_| Peer::new(Automerge::new())).collect();
    let mut writers: Vec<Peer> = (0..3u8)
        .map(|i| Peer::new(Automerge::new().with_actor(fixed_actor(10 + i))))
        .collect();
    let mut cases = Cases::default();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    for step in 0..3_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let i = (rng % 3) as usize;
        match (rng >> 8) % 6 {
            // Typing, once the writer holds the text.
            0 if writers[i].doc.get(ROOT, "text").unwrap().is_some() => {
                type_into(&mut writers[i].doc, &format!(" w{i}s{step}"));
            }
            1 => type_into(&mut server, &format!(" s{step}")),
            2 => {
                let w = &mut writers[i];
                if let Some(m) = w.doc.generate_sync_message(&mut w.state) {
                    at_server[i].inbox.push_back(m.encode());
                }
            }
            3 => {
                if let Some(m) = server.generate_sync_message(&mut at_server[i].state) {
                    writers[i].inbox.push_back(m.encode());
                }
            }
            4 => {
                let w = &mut writers[i];
                if let Some(bytes) = w.inbox.pop_front() {
                    receive_checked(&mut w.doc, &mut w.state, &bytes, &mut cases);
                }
            }
            _ => {
                let s = &mut at_server[i];
                if let Some(bytes) = s.inbox.pop_front() {
                    receive_checked(&mut server, &mut s.state, &bytes, &mut cases);
                }
            }
        }
    }
    // Settle: what is on its way arrives, then everyone ends with the same document.
    for i in 0..3 {
        while let Some(bytes) = at_server[i].inbox.pop_front() {
            receive_checked(&mut server, &mut at_server[i].state, &bytes, &mut cases);
        }
        let w = &mut writers[i];
        while let Some(bytes) = w.inbox.pop_front() {
            receive_checked(&mut w.doc, &mut w.state, &bytes, &mut cases);
        }
    }
    for _ in 0..20 {
        for i in 0..3 {
            let w = &mut writers[i];
            if let Some(m) = w.doc.generate_sync_message(&mut w.state) {
                receive_checked(
                    &mut server,
                    &mut at_server[i].state,
                    &m.encode(),
                    &mut cases,
                );
            }
            if let Some(m) = server.generate_sync_message(&mut at_server[i].state) {
                receive_checked(&mut w.doc, &mut w.state, &m.encode(), &mut cases);
            }
        }
    }
    for w in &writers {
        assert_eq!(w.doc.get_heads(), server.get_heads());
    }
    // The actors, commit times and choices are fixed, so these come about every run.
    assert!(cases.compared >= 500, "{cases:?}");
    assert!(cases.loaded >= 300, "{cases:?}");
    assert!(cases.trimmed_some >= 100, "{cases:?}");
    assert!(cases.trimmed_all_from_older >= 20, "{cases:?}");
    assert!(cases.unknown_heads >= 2, "{cases:?}");
    assert!(cases.empty_heads >= 3, "{cases:?}");
}

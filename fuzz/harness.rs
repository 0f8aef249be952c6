//! The bodies of the fuzz targets, shared with the corpus replay in the server's tests
//! (`server/tests/it/fuzz_corpus.rs`), so that every committed input runs on every `cargo test`.
//!
//! Invariants checked besides "no panic": a frame decodes the same through the quick reader and
//! through the general CBOR decoder; a message
//! `accept` lets through leaves a document whose new part, stored and loaded back, gives the
//! same document (what the store and a restart rely on), and that passes the schema.

#![allow(dead_code)] // each fuzz target uses one of the two entry points

use std::collections::HashSet;
use std::sync::OnceLock;

use automerge::sync::{self, ChunkList, SyncDoc};
use automerge::Automerge;
use rapporteur::docs::schema;
use rapporteur::store::DocKind;
use rapporteur::sync::protocol::{check_sync_message, ClientMessage};

/// The person the messages are checked as (the seeds' bullets are created by this id).
pub const WRITER: &str = "p-fuzz-writer";

/// Group 1's outcome document of the demo meeting, as `docs::init::group_outcome` built it.
/// A fixed copy rather than a fresh build: `group_outcome` picks a random actor, and seeds
/// that extend the document must find the same history every run.
pub const OUTCOME: &[u8] = include_bytes!("fixtures/outcome.automerge");

fn base() -> &'static Automerge {
    static BASE: OnceLock<Automerge> = OnceLock::new();
    BASE.get_or_init(|| Automerge::load(OUTCOME).expect("the fixture loads"))
}

thread_local! {
    static IN_ACCEPT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `schema::accept` turns automerge's panics on malformed bundles into refusals, but the fuzzer's
/// panic hook aborts before any unwinding: inside `accept`, let panics unwind instead. One that
/// escapes `accept` still reaches libFuzzer, which reports it as a crash.
fn quiet_panics_in_accept() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let outer = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_ACCEPT.with(|f| f.get()) {
                outer(info)
            }
        }));
    });
}

pub fn decode(data: &[u8]) {
    let decoded = ClientMessage::decode(data);
    // The quick reader and the general decoder agree on every input.
    assert_eq!(decoded, ClientMessage::decode_general(data));
    if let Ok(msg) = decoded {
        let _ = msg.sender();
    }
}

/// The first byte picks how the rest is read: as a whole sync message (even) or as one raw
/// change or bundle chunk (odd), so that mutations reach the change decoder directly too.
pub fn accept(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let base = base();
    let message = if mode % 2 == 0 {
        // The actor refuses what does not decode or fails this check, before anything else.
        match sync::Message::decode(rest) {
            Ok(m) if check_sync_message(&m).is_ok() => Some(m),
            _ => return,
        }
    } else {
        None
    };
    let chunks = match &message {
        Some(m) => m.changes.clone(),
        None => ChunkList::from(vec![rest.to_vec()]),
    };
    let mut identities = None;
    let mut refused = HashSet::new();
    let owners = schema::ActorOwners::new();
    let writer = schema::Writer {
        person: WRITER,
        owners: &owners,
    };
    quiet_panics_in_accept();
    IN_ACCEPT.with(|f| f.set(true));
    let accepted = schema::accept(
        DocKind::Group(1),
        base,
        &chunks,
        &writer,
        &mut identities,
        &mut refused,
    );
    IN_ACCEPT.with(|f| f.set(false));
    let doc = match accepted {
        Ok(Some(schema::Accepted { doc: next, .. })) => {
            // What the actor stores, loaded back as a restart would.
            let stored = next.save_after(&base.get_heads());
            let mut reloaded = base.clone();
            reloaded
                .load_incremental(&stored)
                .expect("an accepted change reloads");
            let (mut a, mut b) = (reloaded.get_heads(), next.get_heads());
            a.sort();
            b.sort();
            assert_eq!(a, b, "the stored part does not rebuild the document");
            assert!(schema::root_is_intact(&next));
            next
        }
        Ok(None) => base.clone(),
        Err(_) => return,
    };
    // After the commit the actor receives the whole message into the document and answers.
    if let Some(msg) = message {
        let mut doc = doc;
        let mut state = sync::State::new();
        if doc.receive_sync_message(&mut state, msg).is_ok() {
            let _ = doc.generate_sync_message(&mut state);
        }
    }
}

//! A full peer's receive: what automerge's `receive_sync_message` (0.12) does, step by step,
//! without its walk of the whole change graph on every message.
//!
//! Automerge trims the hashes it has sent to those the peer may still lack by walking the
//! change graph back from the peer's heads through the whole history, whether or not anything
//! was sent. A writer receives a message for every change its co-writers make, so over a
//! five-minute meeting that walk grew to most of the generator's time, on the two cores it
//! shares with the server under test: the run measured the generator's writers more than the
//! server. Real writers pay it on their own computers.
//!
//! Here the sent changes are trimmed as the server trims them for its own receive
//! (`docs::trim_sent`): a sent change is an ancestor of the peer's heads exactly when it is not
//! among the changes since them, and nothing is looked up when nothing was sent. Everything
//! else is automerge's own: the changes are loaded with `load_incremental`, as its receive loads
//! them, and the flags are read as the server reads them (`docs::receive_flags`). The tests
//! compare the state and document this leaves with automerge's, message by message, over
//! writers typing at once.

use std::collections::BTreeSet;

use automerge::sync;
use automerge::{Automerge, AutomergeError, ChangeHash};
use rapporteur::docs::{receive_flags, trim_sent};

/// Receives `message` into `doc` and `state` as `doc.receive_sync_message(state, message)`
/// would.
pub fn receive_sync_message(
    doc: &mut Automerge,
    state: &mut sync::State,
    message: sync::Message,
) -> Result<(), AutomergeError> {
    state.in_flight = false;
    let before = doc.get_heads();
    let sync::Message {
        heads,
        changes,
        need,
        have,
        flags,
        ..
    } = message;
    if let Some(flags) = flags {
        receive_flags(state, flags);
    }
    if !changes.is_empty() && !state.read_only {
        let joined: Vec<u8> = changes.iter().flatten().copied().collect();
        doc.load_incremental(&joined)?;
        state.shared_heads = advance_heads(&before, &doc.get_heads(), &state.shared_heads);
    }
    let known: Vec<ChangeHash> = heads.iter().filter(|h| holds(doc, h)).copied().collect();
    trim_sent(doc, &known, || None, &mut state.sent_hashes);
    if changes.is_empty() && heads == before {
        state.last_sent_heads.clone_from(&heads);
    }
    if known.len() == heads.len() {
        state.shared_heads.clone_from(&heads);
        // A peer that holds nothing (it lost its copy) is sent everything again.
        if heads.is_empty() {
            state.last_sent_heads = Vec::new();
            state.sent_hashes = BTreeSet::new();
        }
    } else {
        let shared: BTreeSet<ChangeHash> =
            state.shared_heads.iter().chain(&known).copied().collect();
        state.shared_heads = shared.into_iter().collect();
    }
    state.their_have = Some(have);
    state.their_heads = Some(heads);
    state.their_need = Some(need);
    Ok(())
}

fn holds(doc: &Automerge, hash: &ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}

/// The heads both peers hold after loading changes: ours that are new, and the shared ones
/// still among ours.
fn advance_heads(
    before: &[ChangeHash],
    after: &[ChangeHash],
    shared: &[ChangeHash],
) -> Vec<ChangeHash> {
    let advanced: BTreeSet<ChangeHash> = after
        .iter()
        .filter(|h| !before.contains(h))
        .chain(shared.iter().filter(|h| after.contains(h)))
        .copied()
        .collect();
    advanced.into_iter().collect()
}

#[cfg(test)]
mod tests;

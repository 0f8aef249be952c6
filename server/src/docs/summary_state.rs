//! Keeps the meeting index's `summary` entry in step with the chair's summary.
//!
//! The index tells every viewer where the summary stands (`drafting`, `approved`, `issued`,
//! the revision and whose approval holds). That follows from the summary document itself — an
//! approval holds only for the text it approved, so any edit, over sync or REST, can void it —
//! so the summary's actor works it out after every change it takes in, and a task per loaded
//! summary writes it to the index when it differs. A `watch` channel between them keeps only
//! the latest state: the index never goes back to an older one, however the two interleave.
//!
//! With several nodes, each node's summary actor publishes after the changes it accepts and
//! after those it reads from other nodes, so the index ends in the state of the merged summary.

use std::sync::Arc;

use automerge::Automerge;
use tokio::sync::watch;

use super::{init, spawn_for, Docs, Shared};
use crate::ids::DocId;
use crate::summary::signoff::{index_summary, IndexSummary};

/// The summary actor's end: it publishes, the task writes.
pub struct SummaryStatePublisher {
    tx: watch::Sender<Option<IndexSummary>>,
}

impl SummaryStatePublisher {
    /// Publishes the state of `doc` (the summary as it now is) if it changed.
    pub fn publish(&self, doc: &Automerge) {
        let next = index_summary(doc);
        self.tx.send_if_modified(|current| {
            if current.as_ref() == Some(&next) {
                false
            } else {
                *current = Some(next);
                true
            }
        });
    }
}

/// Starts the task that writes the summary's state of `meeting` into its index document. It
/// ends when the publisher is dropped (the summary unloads) or at shutdown.
pub(super) fn start(
    shared: Arc<Shared>,
    summary: &DocId,
    meeting: String,
) -> SummaryStatePublisher {
    let (tx, mut rx) = watch::channel::<Option<IndexSummary>>(None);
    let docs = Docs {
        shared: shared.clone(),
    };
    let cancel = shared.cancel.clone();
    spawn_for(&shared, summary, "summary-state", async move {
        let index = match docs.shared.store.meeting(&meeting).await {
            Ok(Some(m)) => m.index_doc,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "could not find the meeting index");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
            let Some(state) = rx.borrow_and_update().clone() else {
                continue;
            };
            let written = state.clone();
            // The index edit changes nothing when the index already says so.
            if let Err(e) = docs
                .edit(&index, move |d| init::set_index_summary(d, &written))
                .await
            {
                tracing::warn!(error = %e, state = ?state, "could not update the meeting index");
            }
        }
    });
    SummaryStatePublisher { tx }
}

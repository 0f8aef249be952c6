//! Group commit: concurrent appends of document chunks share one database transaction.
//!
//! Document actors hand their accepted changes to the committer and wait for its answer before
//! they let any heads that include them go out. The committer takes whatever has queued up while
//! the previous transaction ran and writes it in the next one, so that one fsync covers many
//! editors' changes: durability costs latency of one transaction, not throughput.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::{Store, StoreError};
use crate::ids::DocId;

/// The most bytes written in one transaction; a larger queue waits for the next one.
const MAX_BATCH_BYTES: usize = 8 << 20;

struct Pending {
    doc: DocId,
    data: Vec<u8>,
    done: oneshot::Sender<Result<i64, Arc<StoreError>>>,
}

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Pending>,
}

impl Committer {
    /// Starts the commit loop; it ends when the last `Committer` clone is dropped, after
    /// writing everything queued.
    pub fn start(store: Arc<dyn Store>, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(store, rx, metrics).instrument(tracing::info_span!("committer")));
        Self { tx }
    }

    /// Appends one chunk to a document; returns its sequence number once it is durable.
    pub async fn append(&self, doc: DocId, data: Vec<u8>) -> Result<i64, Arc<StoreError>> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Pending { doc, data, done })
            .await
            .map_err(|_| Arc::new(StoreError::Closed))?;
        rx.await.map_err(|_| Arc::new(StoreError::Closed))?
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Pending>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut carry: Option<Pending> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.data.len();
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            if bytes + next.data.len() > MAX_BATCH_BYTES {
                carry = Some(next);
                break;
            }
            bytes += next.data.len();
            batch.push(next);
        }
        let (waiters, chunks): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.done, (p.doc, p.data))).unzip();
        let started = std::time::Instant::now();
        let result = store.append_chunks(&chunks).await.map_err(Arc::new);
        metrics.observe_store(started.elapsed(), chunks.len());
        if let Err(err) = &result {
            tracing::error!(error = %err, chunks = chunks.len(), "group commit failed");
            metrics.set_store_healthy(false);
        } else {
            metrics.set_store_healthy(true);
        }
        match result {
            Ok(seqs) => {
                for (waiter, seq) in waiters.into_iter().zip(seqs) {
                    let _ = waiter.send(Ok(seq));
                }
            }
            Err(err) => {
                for waiter in waiters {
                    let _ = waiter.send(Err(err.clone()));
                }
            }
        }
    }
}

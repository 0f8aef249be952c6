//! The document registry: one actor per loaded document, loaded on demand and unloaded when
//! nobody has used it for a while.
//!
//! An actor owns its `Automerge` document and every peer's sync state for it; all access goes
//! through its queue, so no lock guards a document. The registry maps ids to actors; loading
//! happens once per document even when many connections ask for it at the same moment.

mod actor;
mod fanout;
pub mod format;
pub mod init;
pub mod json;
pub mod schema;
mod summary_state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::Automerge;
use tokio::sync::{mpsc, oneshot, OnceCell};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use actor::{compact, load_doc, Access, Compacted, DocCommand, Outbox, PeerLink};
pub use fanout::{receive_flags, trim_sent};

use crate::cluster::Cluster;
use crate::ids::DocId;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::store::{Committer, DocRecord, Store, StoreError};
use crate::sync::ServerIdentity;

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("unknown document")]
    Unknown,
    #[error("store: {0}")]
    Store(#[from] Arc<StoreError>),
    #[error("document data is corrupt: {0}")]
    Corrupt(String),
    #[error("edit failed: {0}")]
    Edit(String),
    #[error("the document is shutting down")]
    Closed,
}

impl From<StoreError> for DocError {
    fn from(e: StoreError) -> Self {
        DocError::Store(Arc::new(e))
    }
}

/// Settings of the registry.
#[derive(Clone, Debug)]
pub struct DocsConfig {
    /// How long a document with no peers stays in memory.
    pub idle_unload: Duration,
    /// Incremental chunks after which a document is compacted into a snapshot.
    pub compact_after: usize,
}

impl Default for DocsConfig {
    fn default() -> Self {
        Self {
            idle_unload: Duration::from_secs(120),
            compact_after: 256,
        }
    }
}

#[derive(Clone)]
pub struct DocHandle {
    pub record: Arc<DocRecord>,
    tx: mpsc::Sender<DocCommand>,
}

impl DocHandle {
    /// Queues a command. Fails if the actor has unloaded; the caller asks the registry again.
    pub async fn send(&self, cmd: DocCommand) -> Result<(), DocCommand> {
        self.tx.send(cmd).await.map_err(|e| e.0)
    }
}

type Slot = Arc<OnceCell<DocHandle>>;

pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    /// Other nodes on the same database, if any.
    pub cluster: Option<Cluster>,
    pub committer: Committer,
    pub metrics: Arc<Metrics>,
    pub presence: Arc<Presence>,
    pub server: Arc<ServerIdentity>,
    pub config: DocsConfig,
    pub tracker: TaskTracker,
    pub cancel: CancellationToken,
    // std Mutex: held only for map lookups and inserts, never across an await.
    slots: Mutex<HashMap<DocId, Slot>>,
}

#[derive(Clone)]
pub struct Docs {
    shared: Arc<Shared>,
}

/// What the registry is built from.
pub struct DocsParts {
    pub store: Arc<dyn Store>,
    pub cluster: Option<Cluster>,
    pub committer: Committer,
    pub metrics: Arc<Metrics>,
    pub presence: Arc<Presence>,
    pub server: Arc<ServerIdentity>,
    pub config: DocsConfig,
    pub tracker: TaskTracker,
    pub cancel: CancellationToken,
}

impl Docs {
    pub fn new(p: DocsParts) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: p.store,
                cluster: p.cluster,
                committer: p.committer,
                metrics: p.metrics,
                presence: p.presence,
                server: p.server,
                config: p.config,
                tracker: p.tracker,
                cancel: p.cancel,
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The actor of a document if it is loaded on this node (no loading).
    pub fn loaded_handle(&self, id: &DocId) -> Option<DocHandle> {
        let slots = self.shared.slots.lock().expect("registry lock");
        slots.get(id).and_then(|s| s.get().cloned())
    }

    pub fn server(&self) -> &ServerIdentity {
        &self.shared.server
    }

    /// The actor of a document, loading it if needed; `Unknown` if no such document exists.
    pub async fn get(&self, id: &DocId) -> Result<DocHandle, DocError> {
        let slot = {
            let mut slots = self.shared.slots.lock().expect("registry lock");
            slots.entry(id.clone()).or_default().clone()
        };
        let result = slot
            .get_or_try_init(|| actor::load(self.shared.clone(), id.clone()))
            .await
            .cloned();
        if result.is_err() {
            // Do not keep a failed slot around; the next caller tries again.
            let mut slots = self.shared.slots.lock().expect("registry lock");
            if slots
                .get(id)
                .is_some_and(|s| Arc::ptr_eq(s, &slot) && s.get().is_none())
            {
                slots.remove(id);
            }
        }
        result
    }

    /// Sends a command to a document's actor, reloading the document if it was just unloaded.
    pub async fn send(&self, id: &DocId, mut cmd: DocCommand) -> Result<DocHandle, DocError> {
        for _ in 0..3 {
            let handle = self.get(id).await?;
            match handle.send(cmd).await {
                Ok(()) => return Ok(handle),
                Err(back) => {
                    self.forget(id, &handle);
                    cmd = back;
                }
            }
        }
        Err(DocError::Closed)
    }

    /// Runs `f` on the current document.
    pub async fn read<T: Send + 'static>(
        &self,
        id: &DocId,
        f: impl FnOnce(&Automerge) -> T + Send + 'static,
    ) -> Result<T, DocError> {
        let (tx, rx) = oneshot::channel();
        let cmd = DocCommand::Read(Box::new(move |doc| {
            let _ = tx.send(f(doc));
        }));
        self.send(id, cmd).await?;
        rx.await.map_err(|_| DocError::Closed)
    }

    /// Runs `f` on the current document and the owners of its actors, as of the same moment.
    pub async fn read_with_owners<T: Send + 'static>(
        &self,
        id: &DocId,
        f: impl FnOnce(&Automerge, &schema::ActorOwners) -> T + Send + 'static,
    ) -> Result<T, DocError> {
        let (tx, rx) = oneshot::channel();
        let cmd = DocCommand::ReadWithOwners(Box::new(move |doc, owners| {
            let _ = tx.send(f(doc, owners));
        }));
        self.send(id, cmd).await?;
        rx.await.map_err(|_| DocError::Closed)
    }

    /// A server edit: `f` changes the document in its own transaction(s); the result is stored
    /// before it is synced to anyone, and before this returns.
    pub async fn edit(
        &self,
        id: &DocId,
        f: impl FnOnce(&mut Automerge) -> Result<(), automerge::AutomergeError> + Send + 'static,
    ) -> Result<(), DocError> {
        let (tx, rx) = oneshot::channel();
        self.send(
            id,
            DocCommand::Edit {
                f: Box::new(f),
                done: tx,
            },
        )
        .await?;
        rx.await.map_err(|_| DocError::Closed)?
    }

    /// Tells a group document whether it is locked (no writes from anyone).
    pub async fn set_locked(&self, id: &DocId, locked: bool) -> Result<(), DocError> {
        self.send(id, DocCommand::SetLocked(locked))
            .await
            .map(|_| ())
    }

    /// Every loaded document's actor.
    pub fn loaded(&self) -> Vec<DocHandle> {
        let slots = self.shared.slots.lock().expect("registry lock");
        slots.values().filter_map(|s| s.get().cloned()).collect()
    }

    fn forget(&self, id: &DocId, handle: &DocHandle) {
        forget(&self.shared, id, &handle.tx);
    }
}

/// The answer a viewer that holds nothing of a document gets while the document loads, from
/// its stored chunks (`hello` is the viewer's first sync message), encoded; `None` when such a
/// viewer waits for the load instead. What `actor` does on the way, for measuring it.
pub fn answer_from_storage(
    chunks: &[crate::store::Chunk],
    compact_after: usize,
    hello: &automerge::sync::Message,
) -> Option<Vec<u8>> {
    let stored = fanout::Stored::of(chunks, compact_after)?;
    let mut state = automerge::sync::State::new_read_only();
    stored.answer(hello, &mut state).map(|m| m.encode())
}

/// Removes the registry entry of an actor, if it is still the one registered.
fn forget(shared: &Shared, id: &DocId, tx: &mpsc::Sender<DocCommand>) {
    let mut slots = shared.slots.lock().expect("registry lock");
    if slots
        .get(id)
        .and_then(|s| s.get())
        .is_some_and(|h| h.tx.same_channel(tx))
    {
        slots.remove(id);
    }
}

/// Spawns a task with a span naming its document, tracked for shutdown.
fn spawn_for(
    shared: &Shared,
    id: &DocId,
    what: &'static str,
    fut: impl std::future::Future<Output = ()> + Send + 'static,
) {
    shared
        .tracker
        .spawn(fut.instrument(tracing::info_span!("doc", doc = %id, task = what)));
}

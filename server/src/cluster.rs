//! Several server nodes on one PostgreSQL database: what they tell each other and what each
//! does on hearing it. No cluster protocol of our own: PostgreSQL `LISTEN/NOTIFY` carries
//! everything (see `store::ClusterEvent`).
//!
//! - A chunk appended on another node: the document's actor here, if loaded, reads the new
//!   chunks and syncs them to its peers.
//! - Ephemeral messages and presence counts: relayed to this node's peers / added to its table.
//! - A revoked invite or a locked group: applied to this node's connections and documents.
//! - A lost channel: every loaded document catches up from the database.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::docs::{DocCommand, Docs};
use crate::presence::{Counts, Presence};
use crate::store::{ClusterEvent, Store};
use crate::sync::Connections;

/// How often a node republishes its presence counts, and after how long silence another
/// node's counts are forgotten.
const PRESENCE_EVERY: Duration = Duration::from_secs(10);
const PRESENCE_TTL: Duration = Duration::from_secs(35);

/// The sending side: a bounded queue to a task that publishes. Publishing never blocks a
/// document actor; if the queue is full the event is dropped (presence and cursors are
/// best-effort; chunk notices do not go this way).
#[derive(Clone)]
pub struct Cluster {
    pub node: String,
    tx: mpsc::Sender<ClusterEvent>,
}

impl Cluster {
    pub fn publish(&self, event: ClusterEvent) {
        if self.tx.try_send(event).is_err() {
            tracing::debug!("cluster publish queue full; dropped an event");
        }
    }
}

/// Starts the publisher if the store is shared; returns the handle and the incoming events.
pub async fn connect(
    store: &Arc<dyn Store>,
    node: &str,
) -> crate::store::Result<Option<(Cluster, mpsc::Receiver<ClusterEvent>)>> {
    let Some(incoming) = store.subscribe().await? else {
        return Ok(None);
    };
    let (tx, mut rx) = mpsc::channel::<ClusterEvent>(4096);
    let publisher = store.clone();
    tokio::spawn(
        async move {
            while let Some(event) = rx.recv().await {
                if let Err(e) = publisher.publish(&event).await {
                    tracing::warn!(error = %e, "could not publish a cluster event");
                }
            }
        }
        .instrument(tracing::info_span!("cluster-publish")),
    );
    Ok(Some((
        Cluster {
            node: node.to_owned(),
            tx,
        },
        incoming,
    )))
}

/// Acts on what the other nodes say, and keeps this node's presence fresh on theirs.
pub async fn run(
    cluster: Cluster,
    mut incoming: mpsc::Receiver<ClusterEvent>,
    docs: Docs,
    connections: Arc<Connections>,
    presence: Arc<Presence>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(PRESENCE_EVERY);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                for (meeting, doc, c) in presence.local() {
                    cluster.publish(ClusterEvent::Presence {
                        node: cluster.node.clone(),
                        meeting,
                        doc,
                        editors: c.editors,
                        viewers: c.viewers,
                    });
                }
                presence.expire(PRESENCE_TTL);
                continue;
            }
            event = incoming.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        match event {
            ClusterEvent::Chunk { doc, seq } => {
                if let Some(handle) = docs.loaded_handle(&doc) {
                    let _ = handle.send(DocCommand::Remote { seq }).await;
                }
            }
            ClusterEvent::Ephemeral {
                node,
                doc,
                sender,
                session,
                count,
                data,
            } => {
                if node == cluster.node {
                    continue;
                }
                let Ok(data) =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
                else {
                    continue;
                };
                if let Some(handle) = docs.loaded_handle(&doc) {
                    let cmd = DocCommand::RemoteEphemeral {
                        sender: crate::ids::PeerId(sender),
                        session,
                        count,
                        data,
                    };
                    let _ = handle.send(cmd).await;
                }
            }
            ClusterEvent::Presence {
                node,
                meeting,
                doc,
                editors,
                viewers,
            } => {
                if node != cluster.node {
                    presence.set_remote(&node, &meeting, &doc, Counts { editors, viewers });
                }
            }
            ClusterEvent::Revoked { person } => {
                connections.close_person(&person);
            }
            ClusterEvent::Locked { doc, locked } => {
                if let Some(handle) = docs.loaded_handle(&doc) {
                    let _ = handle.send(DocCommand::SetLocked(locked)).await;
                }
            }
            ClusterEvent::Resync => {
                tracing::warn!(
                    "the cluster channel was re-established; catching up every loaded document"
                );
                for handle in docs.loaded() {
                    let _ = handle.send(DocCommand::Remote { seq: i64::MAX }).await;
                }
            }
        }
    }
}

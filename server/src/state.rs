//! The application state shared by every handler and connection.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tracing::Instrument;

use crate::cluster;
use crate::docs::{Docs, DocsConfig, DocsParts};
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::store::{Committer, Store, StoreError};
use crate::sync::limits::{AddressCounts, Limits};
use crate::sync::{Connections, ServerIdentity};

/// Settings of a running server.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The URL people reach the server at; invite links start with it.
    pub public_url: String,
    /// The built web app (`web/dist`).
    pub web_dir: PathBuf,
    pub docs: DocsConfig,
    /// Message rate per connection and connections per address.
    pub limits: Limits,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub docs: Docs,
    pub connections: Arc<Connections>,
    /// Open sync connections per client address, for `Limits::connections_per_ip`.
    pub addresses: Arc<AddressCounts>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<Settings>,
    /// Cancelled at shutdown: ends connections and document actors.
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl AppState {
    pub async fn new(store: Arc<dyn Store>, settings: Settings) -> Result<Self, StoreError> {
        let storage_id = store
            .init_setting("storage_id", &uuid::Uuid::new_v4().to_string())
            .await?;
        let metrics = Arc::new(Metrics::default());
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let committer = Committer::start(store.clone(), metrics.clone());
        let server = Arc::new(ServerIdentity::new(storage_id));
        let presence = Arc::new(Presence::default());
        let connections = Arc::new(Connections::default());
        let cluster = cluster::connect(&store, &server.session_id).await?;
        let docs = Docs::new(DocsParts {
            store: store.clone(),
            cluster: cluster.as_ref().map(|(c, _)| c.clone()),
            committer,
            metrics: metrics.clone(),
            presence: presence.clone(),
            server,
            config: settings.docs.clone(),
            tracker: tracker.clone(),
            cancel: shutdown.clone(),
        });
        if let Some((cluster, incoming)) = cluster {
            tracker.spawn(
                cluster::run(
                    cluster.clone(),
                    incoming,
                    docs.clone(),
                    connections.clone(),
                    presence,
                    shutdown.clone(),
                )
                .instrument(tracing::info_span!("cluster")),
            );
        }
        Ok(Self {
            store,
            docs,
            connections,
            addresses: Arc::new(AddressCounts::default()),
            metrics,
            settings: Arc::new(settings),
            shutdown,
            tracker,
        })
    }
}

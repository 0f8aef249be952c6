//! Rapporteur: a live drafting server for intergovernmental meetings that work in parallel
//! breakout groups.
//!
//! Architecture, from the outside in:
//! - `http`: the REST API (meetings, invites, submissions), the invite-link sessions, the web
//!   app's static files, and the `/sync` WebSocket upgrade, which authenticates first.
//! - `sync`: the `automerge-repo` 2.x wire protocol (`protocol`) and one task per WebSocket
//!   (`connection`).
//! - `docs`: one actor per loaded document owning the `Automerge` document and every peer's
//!   sync state; it checks incoming changes against the role's rights and the schema
//!   (`docs::schema`), makes them durable, then fans them out.
//! - `store`: the `Store` trait over SQLite (embedded default) and PostgreSQL (several nodes on
//!   one database), and the group committer that batches concurrent writes into one
//!   transaction.
//! - `cluster`: with PostgreSQL, what nodes tell each other over `LISTEN/NOTIFY`.
//! - `summary`: the chair's summary — merge with provenance, re-merge, consolidation,
//!   sign-off, history and exports, as pure functions over documents.
//! - `auth`, `meeting`, `admin`, `presence`, `metrics`, `logging`: identities and roles, the
//!   meeting model, meeting creation and invites, live counts, Prometheus metrics, the log
//!   filter.
//!
//! Invariant: no peer ever receives heads that include a change the database does not hold.

pub mod admin;
pub mod auth;
pub mod cluster;
pub mod docs;
pub mod http;
pub mod ids;
pub mod logging;
pub mod meeting;
pub mod metrics;
pub mod presence;
pub mod state;
pub mod store;
pub mod summary;
pub mod sync;

use std::future::Future;
use std::time::Duration;

pub use http::router;
pub use state::{AppState, Settings};

/// Serves on an already bound listener until `shutdown` resolves; then stops accepting, ends
/// the connections and document actors, and waits (bounded) for them to finish. Every change a
/// peer saw acknowledged is already in the database by then.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let cancel = state.shutdown.clone();
    // The peer address is what the per-address connection cap counts.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Sync frames are small and latency is the point: no Nagle delay on them.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            cancel.cancel();
        })
        .await;
    state.shutdown.cancel();
    state.tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some document tasks did not finish within 10 s");
    }
    result
}

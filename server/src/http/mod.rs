//! The HTTP surface: one `router()` per resource, merged here.
//!
//! `/api/...` is JSON (documented in `docs/api.md` and served as OpenAPI at
//! `/api/openapi.json`); `/sync` upgrades to the sync WebSocket; `/join/<token>` starts a
//! session; anything else is the web app, with `index.html` for client-side routes.

mod error;
mod invites;
mod meetings;
mod openapi;
mod session;
mod summary;
mod versions;

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use tower_http::services::{ServeDir, ServeFile};

pub use error::{Error, Result};

use crate::auth::{self, Person};
use crate::state::AppState;
use crate::sync::connection::{self, MAX_FRAME_BYTES};

/// The authenticated person of a request (bearer token or session cookie).
pub struct Auth(pub Arc<Person>);

impl FromRequestParts<AppState> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        Ok(Auth(
            auth::authenticate(state.store.as_ref(), &parts.headers, None).await?,
        ))
    }
}

pub fn router(state: AppState) -> Router {
    let web = &state.settings.web_dir;
    let index = web.join("index.html");
    let spa = ServeDir::new(web).fallback(ServeFile::new(index));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/sync", get(sync))
        .merge(meetings::router())
        .merge(invites::router())
        .merge(session::router())
        .merge(summary::router())
        .merge(versions::router())
        .merge(openapi::router())
        .fallback_service(spa)
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "database not reachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "database not reachable").into_response();
    }
    if !state.metrics.store_healthy() {
        // The last commit failed: ready again as soon as the database takes a write.
        match state.store.probe_write().await {
            Ok(()) => state.metrics.set_store_healthy(true),
            Err(e) => {
                tracing::warn!(error = %e, "database refuses writes");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database refuses writes",
                )
                    .into_response();
            }
        }
    }
    "ready".into_response()
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

#[derive(Deserialize)]
struct SyncQuery {
    token: Option<String>,
}

/// Bytes read from a WebSocket at a time. Sync frames are a few hundred bytes; tungstenite
/// zeroes the free part of its read buffer before every read, and its default (128 KiB per
/// connection) made that the largest single cost of receiving acknowledgements from a thousand
/// viewers, and a third of the server's memory. A larger frame still arrives whole: the buffer
/// grows to the frame's length.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Authenticates at the upgrade: no valid invite or session, no WebSocket (401). An address
/// with too many open connections gets 429 before its token is even looked up.
async fn sync(
    State(state): State<AppState>,
    Query(query): Query<SyncQuery>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    // Without connection info (a router served without it, as in `oneshot` tests) there is no
    // address to count.
    let slot = match peer {
        Some(Extension(ConnectInfo(addr))) => {
            let cap = state.settings.limits.connections_per_ip;
            match state.addresses.admit(addr.ip(), cap) {
                Some(slot) => Some(slot),
                None => {
                    tracing::info!(ip = %addr.ip(), cap, "refused a connection over the per-address cap");
                    return Err(Error::TooMany("too many connections from your address"));
                }
            }
        }
        None => None,
    };
    let person = auth::authenticate(state.store.as_ref(), &headers, query.token.as_deref()).await?;
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            connection::run(socket, state, person).await;
            drop(slot);
        }))
}

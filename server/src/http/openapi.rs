//! The REST API as an OpenAPI 3.1 document, served at `/api/openapi.json`. Written by hand beside
//! `docs/api.md`; an integration test (`tests/it/openapi.rs`) checks that every route it lists
//! exists. A new route goes into both documents.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response() }),
    )
}

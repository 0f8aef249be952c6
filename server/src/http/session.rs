//! Identity: opening an invite link starts a session; `/api/me` says who you are.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{Auth, Error, Result};
use crate::auth::{self, hash_token, new_token, SESSION_COOKIE};
use crate::meeting::Role;
use crate::state::AppState;
use crate::store::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/join/{token}", get(join))
        .route("/api/me", get(me))
        .route("/api/logout", post(logout))
}

/// The page each role lands on.
fn landing(role: Role, meeting: &str, group: Option<u32>) -> String {
    match (role, group) {
        (Role::Rapporteur | Role::Moderator, Some(n)) => format!("/m/{meeting}/groups/{n}"),
        (Role::CoFacilitator | Role::Secretariat, _) => format!("/m/{meeting}/dashboard"),
        _ => format!("/m/{meeting}"),
    }
}

async fn join(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response> {
    let person = match auth::person_for_token(state.store.as_ref(), &token).await {
        Ok(p) => p,
        Err(auth::AuthError::Store(e)) => return Err(e.into()),
        Err(_) => {
            let page = "<!doctype html><meta charset=utf-8><title>Invite not valid</title>\
                <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\
                <h1>This invite link is not valid</h1><p>It may have been revoked or may have \
                expired. Ask the meeting secretariat for a new one.</p>";
            return Ok((StatusCode::UNAUTHORIZED, Html(page)).into_response());
        }
    };
    let secret = new_token();
    state
        .store
        .create_session(&hash_token(&secret), &person.id, now_ms())
        .await?;
    let secure = if state.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age=1209600{secure}"
    );
    let location = landing(person.role, &person.meeting, person.group);
    Ok((
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie), (header::LOCATION, location)],
    )
        .into_response())
}

async fn me(Auth(person): Auth) -> Json<serde_json::Value> {
    Json(json!({ "person": {
        "id": person.id,
        "name": person.name,
        "role": person.role,
        "group": person.group,
        "meeting": person.meeting,
    }}))
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    if let Some(secret) = auth::session_cookie(&headers) {
        state.store.delete_session(&hash_token(secret)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

//! Invites: created and revoked by the secretariat and co-facilitators. Revoking ends the
//! person's live connections at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Auth, Error, Result};
use crate::admin::{self, NewInvite};
use crate::ids::PersonId;
use crate::meeting::Role;
use crate::state::AppState;
use crate::store::{now_ms, InviteRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/meetings/{slug}/invites", get(list).post(create))
        .route("/api/invites/{id}", delete(revoke))
}

fn view(i: &InviteRecord) -> Value {
    json!({
        "id": i.id,
        "role": i.role,
        "group": i.group,
        "name": i.name,
        "createdAt": i.created_at,
        "expiresAt": i.expires_at,
        "revokedAt": i.revoked_at,
    })
}

fn check_admin(role: Role, meeting: &str, slug: &str) -> Result<()> {
    if meeting != slug {
        return Err(Error::NotFound("meeting"));
    }
    if !role.administers() {
        return Err(Error::Forbidden(
            "only the secretariat and co-facilitators manage invites",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    role: String,
    group: Option<u32>,
    #[serde(default)]
    name: String,
    expires_in_hours: Option<u32>,
}

async fn create(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Value>)> {
    check_admin(person.role, &person.meeting, &slug)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| Error::BadRequest(format!("unknown role `{}`", body.role)))?;
    let new = NewInvite {
        meeting: slug,
        role,
        group: body.group,
        name: body.name,
        expires_in_hours: body.expires_in_hours,
    };
    let (record, url) =
        admin::create_invite(state.store.as_ref(), &state.settings.public_url, new).await?;
    let token = url.rsplit('/').next().unwrap_or_default().to_owned();
    let mut out = view(&record);
    out["url"] = json!(url);
    out["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn list(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Vec<Value>>> {
    check_admin(person.role, &person.meeting, &slug)?;
    Ok(Json(
        state.store.invites(&slug).await?.iter().map(view).collect(),
    ))
}

async fn revoke(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = PersonId(id);
    let invite = state
        .store
        .invite(&id)
        .await?
        .ok_or(Error::NotFound("invite"))?;
    check_admin(person.role, &person.meeting, &invite.meeting)?;
    state.store.revoke_invite(&id, now_ms()).await?;
    let closed = state.connections.close_person(&id);
    // Other nodes end theirs too.
    state
        .store
        .publish(&crate::store::ClusterEvent::Revoked { person: id.clone() })
        .await?;
    tracing::info!(person = %id, closed, "invite revoked");
    if invite.role == Role::CoFacilitator {
        // The revoked co-facilitator may have been the last one the sign-off waited for. The
        // revocation stands either way.
        if let Err(e) = super::summary::issue_if_approved(&state, &invite.meeting, &person).await {
            tracing::error!(error = %e, "could not issue the summary after a revocation");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

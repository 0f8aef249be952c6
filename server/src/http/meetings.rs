//! Meetings, their groups, submissions, and the co-facilitators' lock and reopen.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Auth, Error, Result};
use crate::admin;
use crate::auth::Person;
use crate::docs::{format, init, json as docjson};
use crate::meeting::{validate_group_text, MeetingFile, Role, Slot};
use crate::state::AppState;
use crate::store::{now_ms, GroupRecord, GroupState, MeetingRecord, SubmissionRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/meetings", get(list).post(create))
        .route("/api/meetings/{slug}", get(show))
        .route("/api/meetings/{slug}/groups/{n}", patch(edit_group))
        .route("/api/meetings/{slug}/groups/{n}/submit", post(submit))
        .route("/api/meetings/{slug}/groups/{n}/lock", post(lock))
        .route("/api/meetings/{slug}/groups/{n}/reopen", post(reopen))
}

/// The meeting, if the person belongs to it. Another meeting is "not found", not "forbidden":
/// an invite reveals nothing about other meetings.
pub(super) async fn meeting_of(
    state: &AppState,
    person: &Person,
    slug: &str,
) -> Result<MeetingRecord> {
    if person.meeting != slug {
        return Err(Error::NotFound("meeting"));
    }
    state
        .store
        .meeting(slug)
        .await?
        .ok_or(Error::NotFound("meeting"))
}

pub(super) async fn group_of(state: &AppState, slug: &str, n: u32) -> Result<GroupRecord> {
    state
        .store
        .groups(slug)
        .await?
        .into_iter()
        .find(|g| g.number == n)
        .ok_or(Error::NotFound("group"))
}

fn summary(m: &MeetingRecord) -> Value {
    json!({
        "slug": m.slug,
        "title": m.file.title,
        "venue": m.file.venue,
        "startDate": m.file.start_date,
        "endDate": m.file.end_date,
    })
}

async fn view(state: &AppState, m: &MeetingRecord) -> Result<Value> {
    let groups = state.store.groups(&m.slug).await?;
    let submissions = state.store.submissions(&m.slug).await?;
    let groups: Vec<Value> = m
        .file
        .groups
        .iter()
        .map(|g| {
            let record = groups.iter().find(|r| r.number == g.number);
            let subs: Vec<&SubmissionRecord> =
                submissions.iter().filter(|s| s.group == g.number).collect();
            json!({
                "number": g.number,
                "dimension": g.dimension,
                "slot": g.slot,
                "questions": g.questions,
                "moderator": g.moderator,
                "rapporteur": g.rapporteur,
                "outcomeDocUrl": record.map(|r| r.doc.url()),
                "state": record.map(|r| r.state),
                "submissions": subs,
            })
        })
        .collect();
    let summary_state = state
        .docs
        .read(&m.summary_doc, crate::summary::signoff::index_summary)
        .await?;
    let mut out = summary(m);
    let extra = json!({
        "timezone": m.file.timezone,
        "agenda": m.file.agenda,
        "formatRules": m.file.format_rules,
        "sections": m.file.sections,
        "indexDocUrl": m.index_doc.url(),
        "summaryDocUrl": m.summary_doc.url(),
        "summaryState": summary_state.state,
        "summaryRevision": summary_state.revision,
        "groups": groups,
    });
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    Ok(out)
}

async fn list(State(state): State<AppState>, Auth(person): Auth) -> Result<Json<Vec<Value>>> {
    let all = state.store.meetings().await?;
    Ok(Json(
        all.iter()
            .filter(|m| m.slug == person.meeting)
            .map(summary)
            .collect(),
    ))
}

async fn create(
    State(state): State<AppState>,
    Auth(person): Auth,
    Json(file): Json<MeetingFile>,
) -> Result<(StatusCode, Json<Value>)> {
    if person.role != Role::Secretariat {
        return Err(Error::Forbidden("only the secretariat creates meetings"));
    }
    let meeting = admin::create_meeting(state.store.as_ref(), file).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &meeting).await?)))
}

async fn show(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let meeting = meeting_of(&state, &person, &slug).await?;
    Ok(Json(view(&state, &meeting).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupPatch {
    dimension: Option<String>,
    questions: Option<Vec<String>>,
    moderator: Option<String>,
    rapporteur: Option<String>,
    slot: Option<Slot>,
}

async fn edit_group(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, n)): Path<(String, u32)>,
    Json(patch): Json<GroupPatch>,
) -> Result<Json<Value>> {
    if !person.role.administers() {
        return Err(Error::Forbidden(
            "only the secretariat and co-facilitators edit groups",
        ));
    }
    let mut meeting = meeting_of(&state, &person, &slug).await?;
    let record = group_of(&state, &slug, n).await?;
    let group = meeting
        .file
        .groups
        .iter_mut()
        .find(|g| g.number == n)
        .ok_or(Error::NotFound("group"))?;
    if let Some(v) = patch.dimension {
        group.dimension = v;
    }
    if let Some(v) = patch.questions {
        group.questions = v;
    }
    if let Some(v) = patch.moderator {
        group.moderator = v;
    }
    if let Some(v) = patch.rapporteur {
        group.rapporteur = v;
    }
    if let Some(v) = patch.slot {
        group.slot = v;
    }
    validate_group_text(group).map_err(|e| Error::BadRequest(e.0))?;
    let group = group.clone();
    state
        .store
        .update_meeting_file(&slug, &meeting.file)
        .await?;
    let g = group.clone();
    let author = crate::summary::Author {
        person: person.id.0.clone(),
        name: person.name.clone(),
    };
    state
        .docs
        .edit(&record.doc, move |doc| {
            init::set_outcome_group(doc, &g, &author)
        })
        .await?;
    let g = group.clone();
    state
        .docs
        .edit(&meeting.index_doc, move |doc| {
            init::set_index_group(doc, &g)
        })
        .await?;
    Ok(Json(
        serde_json::to_value(&group).map_err(|e| Error::Internal(e.to_string()))?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    #[serde(default, rename = "override")]
    override_rules: bool,
}

async fn submit(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, n)): Path<(String, u32)>,
    body: Option<Json<SubmitBody>>,
) -> Result<Json<Value>> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let meeting = meeting_of(&state, &person, &slug).await?;
    if !person.may_submit(n) {
        return Err(Error::Forbidden(
            "only the group's rapporteur, moderator or a co-facilitator submits",
        ));
    }
    if body.override_rules && person.role != Role::CoFacilitator {
        return Err(Error::Forbidden(
            "only a co-facilitator may override the format rules",
        ));
    }
    let group = group_of(&state, &slug, n).await?;
    if group.state == GroupState::Locked {
        return Err(Error::Conflict("the group is locked".into()));
    }
    let (heads, outcome) = state
        .docs
        .read(&group.doc, |doc| {
            let heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
            (heads, docjson::document_json(doc, None))
        })
        .await?;
    let violations = format::check(&outcome, &meeting.file.format_rules);
    if !violations.is_empty() && !body.override_rules {
        return Err(Error::Format(violations));
    }
    let mut record = SubmissionRecord {
        meeting: slug.clone(),
        group: n,
        version: 0,
        at: now_ms(),
        by_person: person.id.0.clone(),
        by_name: person.name.clone(),
        heads,
        content_hash: docjson::content_hash(&outcome),
        override_rules: body.override_rules && !violations.is_empty(),
    };
    record.version = state.store.add_submission(&record).await?;
    let r = record.clone();
    state
        .docs
        .edit(&meeting.index_doc, move |doc| {
            init::add_index_submission(doc, &r)
        })
        .await?;
    tracing::info!(meeting = %slug, group = n, version = record.version, "outcome submitted");
    Ok(Json(json!({ "submission": record })))
}

async fn set_state(
    state: &AppState,
    person: &Person,
    slug: &str,
    n: u32,
    next: GroupState,
) -> Result<Json<Value>> {
    let meeting = meeting_of(state, person, slug).await?;
    if person.role != Role::CoFacilitator {
        return Err(Error::Forbidden(
            "only co-facilitators lock and reopen groups",
        ));
    }
    let group = group_of(state, slug, n).await?;
    state.store.set_group_state(slug, n, next).await?;
    state
        .docs
        .set_locked(&group.doc, next == GroupState::Locked)
        .await?;
    state
        .docs
        .edit(&meeting.index_doc, move |doc| {
            init::set_index_group_state(doc, n, next)
        })
        .await?;
    Ok(Json(json!({ "state": next })))
}

async fn lock(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, n)): Path<(String, u32)>,
) -> Result<Json<Value>> {
    set_state(&state, &person, &slug, n, GroupState::Locked).await
}

async fn reopen(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, n)): Path<(String, u32)>,
) -> Result<Json<Value>> {
    set_state(&state, &person, &slug, n, GroupState::Drafting).await
}

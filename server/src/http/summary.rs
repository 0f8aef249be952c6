//! The chair's summary over REST: merge, decisions on stale items, consolidation, sign-off and
//! revisions. Versions, comparisons and exports of the summary and the group outcomes are in
//! `versions`.
//!
//! Every write is a server edit of the summary document (`Docs::edit`): one Automerge change
//! attributed to the co-facilitator who asked, stored before it is synced to anyone. The logic
//! lives in `crate::summary`; this module checks roles, gathers inputs and maps errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use automerge::{Automerge, ReadDoc};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::meetings::meeting_of;
use super::{Auth, Error, Result};
use crate::auth::Person;
use crate::docs::json::document_json;
use crate::ids::DocId;
use crate::meeting::Role;
use crate::state::AppState;
use crate::store::{now_ms, MeetingRecord, SubmissionRecord};
use crate::summary::cluster;
use crate::summary::history::parse_heads;
use crate::summary::merge::{self, Decision, ResolveError};
use crate::summary::sections::{self, SectionError};
use crate::summary::signoff::{self, SignoffError};
use crate::summary::{bullets_of, Author, Submitted};

pub fn router() -> Router<AppState> {
    let base = "/api/meetings/{slug}/summary";
    Router::new()
        .route(base, get(show))
        .route(&format!("{base}/merge"), post(merge_all))
        .route(&format!("{base}/items/{{id}}/resolve"), post(resolve))
        .route(&format!("{base}/update-unedited"), post(update_unedited))
        .route(&format!("{base}/clusters"), get(clusters))
        .route(
            &format!("{base}/clusters/{{id}}/merge"),
            post(merge_cluster),
        )
        .route(
            &format!("{base}/clusters/{{id}}/dismiss"),
            post(dismiss_cluster),
        )
        .route(&format!("{base}/sections"), post(add_section))
        .route(
            &format!("{base}/sections/{{id}}"),
            patch(rename_section).delete(remove_section),
        )
        .route(&format!("{base}/items/{{id}}/move"), post(move_item))
        .route(&format!("{base}/approve"), post(approve))
        .route(&format!("{base}/revisions"), post(new_revision))
        .route(&format!("{base}/revisions/{{r}}"), get(revision))
}

fn co_facilitator(person: &Person) -> Result<Author> {
    if person.role != Role::CoFacilitator {
        return Err(Error::Forbidden("only co-facilitators change the summary"));
    }
    Ok(Author {
        person: person.id.0.clone(),
        name: person.name.clone(),
    })
}

/// What an edit closure reports when it had nothing to store.
const NOTHING: &str = "nothing to store";

/// Runs `f` as a server edit of `doc`. `f`'s own result comes back whatever it is; the edit is
/// stored only if `f` succeeded and changed the document.
pub(super) async fn edit<T: Send + 'static>(
    state: &AppState,
    doc: &DocId,
    f: impl FnOnce(&mut Automerge) -> Result<T> + Send + 'static,
) -> Result<T> {
    let slot: Arc<Mutex<Option<Result<T>>>> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let stored = state
        .docs
        .edit(doc, move |d| {
            let before = d.get_heads();
            let r = f(d);
            let changed = r.is_ok() && d.get_heads() != before;
            // std Mutex: held for one assignment, never across an await.
            *out.lock().expect("slot") = Some(r);
            if changed {
                Ok(())
            } else {
                Err(automerge::AutomergeError::InvalidObjId(NOTHING.into()))
            }
        })
        .await;
    let result = slot.lock().expect("slot").take();
    match (stored, result) {
        (Ok(()), Some(r)) => r,
        (Err(crate::docs::DocError::Edit(m)), Some(r)) if m.contains(NOTHING) => r,
        (Err(e), _) => Err(e.into()),
        (Ok(()), None) => Err(Error::Internal("the edit did not run".into())),
    }
}

pub(super) async fn read_summary(state: &AppState, m: &MeetingRecord) -> Result<Value> {
    Ok(state
        .docs
        .read(&m.summary_doc, |d| document_json(d, None))
        .await?)
}

/// Person ids and names of the meeting's co-facilitators whose invites are neither revoked nor
/// expired: an expired invite no longer signs anyone in, so its person could never approve.
async fn co_facilitators(state: &AppState, slug: &str) -> Result<Vec<(String, String)>> {
    let now = now_ms();
    Ok(state
        .store
        .invites(slug)
        .await?
        .into_iter()
        .filter(|i| i.role == Role::CoFacilitator && i.usable_at(now))
        .map(|i| (i.id.0, i.name))
        .collect())
}

/// Person ids of the meeting's co-facilitators whose invites are neither revoked nor expired.
async fn co_facilitator_ids(state: &AppState, slug: &str) -> Result<Vec<String>> {
    Ok(co_facilitators(state, slug)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// Everyone of the meeting by person id, for answers that name authors: `names` (id → name)
/// and `people` (id → `{name, role, group}`).
pub(super) async fn people(state: &AppState, slug: &str) -> Result<(Value, Value)> {
    let invites = state.store.invites(slug).await?;
    let names: serde_json::Map<String, Value> = invites
        .iter()
        .map(|i| (i.id.0.clone(), json!(i.name)))
        .collect();
    let people: serde_json::Map<String, Value> = invites
        .iter()
        .map(|i| {
            (
                i.id.0.clone(),
                json!({"name": i.name, "role": i.role.as_str(), "group": i.group}),
            )
        })
        .collect();
    Ok((Value::Object(names), Value::Object(people)))
}

async fn signoff_view(state: &AppState, slug: &str, summary: &Value) -> Result<Value> {
    let cofacs = co_facilitators(state, slug).await?;
    let ids: Vec<String> = cofacs.iter().map(|(id, _)| id.clone()).collect();
    let status = signoff::status(summary, &ids);
    let name = |id: &String| {
        cofacs
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_default()
    };
    Ok(json!({
        "state": status.state,
        "revision": status.revision,
        "approvedBy": status.approved_by.iter().map(|p| json!({"person": p, "name": name(p)})).collect::<Vec<_>>(),
        "waitingFor": status.waiting_for.iter().map(|p| json!({"person": p, "name": name(p)})).collect::<Vec<_>>(),
    }))
}

async fn show(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let summary = read_summary(&state, &m).await?;
    let signoff = signoff_view(&state, &slug, &summary).await?;
    Ok(Json(json!({
        "docUrl": m.summary_doc.url(),
        "signoff": signoff,
        "document": summary,
    })))
}

/// The latest submission of each group, read at its frozen heads.
async fn latest_submissions(state: &AppState, m: &MeetingRecord) -> Result<Vec<Submitted>> {
    let subs = state.store.submissions(&m.slug).await?;
    let groups = state.store.groups(&m.slug).await?;
    let mut latest: HashMap<u32, &SubmissionRecord> = HashMap::new();
    for s in &subs {
        if latest.get(&s.group).is_none_or(|l| l.version < s.version) {
            latest.insert(s.group, s);
        }
    }
    let mut out = Vec::new();
    for g in &groups {
        let Some(sub) = latest.get(&g.number) else {
            continue;
        };
        let outcome = outcome_at(state, &g.doc, &sub.heads).await?;
        let dimension = m
            .file
            .groups
            .iter()
            .find(|f| f.number == g.number)
            .map(|f| f.dimension.clone())
            .unwrap_or_else(|| format!("Action group {}", g.number));
        out.push(Submitted {
            group: g.number,
            dimension,
            version: sub.version,
            bullets: bullets_of(&outcome),
        });
    }
    out.sort_by_key(|s| s.group);
    Ok(out)
}

pub(super) async fn outcome_at(state: &AppState, doc: &DocId, heads: &[String]) -> Result<Value> {
    let heads = parse_heads(heads).ok_or(Error::Internal("bad submission heads".into()))?;
    state
        .docs
        .read(doc, move |d| {
            if heads.iter().all(|h| d.get_change_by_hash(h).is_some()) {
                Some(document_json(d, Some(&heads)))
            } else {
                None
            }
        })
        .await?
        .ok_or(Error::Internal("a submission's heads are missing".into()))
}

fn issued_conflict() -> Error {
    Error::Conflict("the summary is issued; start a new revision to change it".into())
}

async fn merge_all(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    let subs = latest_submissions(&state, &m).await?;
    let report = edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        merge::merge(d, &subs, &author).map_err(|e| Error::Internal(e.to_string()))
    })
    .await?;
    tracing::info!(meeting = %slug, ?report, "summary merged");
    Ok(Json(json!(report)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    action: Decision,
}

fn resolve_error(e: ResolveError) -> Error {
    match e {
        ResolveError::NoItem => Error::NotFound("item"),
        ResolveError::NothingToResolve | ResolveError::Ambiguous => Error::Conflict(e.to_string()),
        ResolveError::Automerge(m) => Error::Internal(m),
    }
}

async fn resolve(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, id)): Path<(String, String)>,
    Json(body): Json<ResolveBody>,
) -> Result<StatusCode> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        merge::resolve(d, &id, body.action, &author).map_err(resolve_error)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update_unedited(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    let updated = edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        merge::update_unedited(d, &author).map_err(|e| Error::Internal(e.to_string()))
    })
    .await?;
    Ok(Json(json!({ "updated": updated })))
}

async fn clusters(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Vec<cluster::Cluster>>> {
    let m = meeting_of(&state, &person, &slug).await?;
    Ok(Json(cluster::clusters(&read_summary(&state, &m).await?)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClusterBody {
    text: Option<String>,
}

async fn merge_cluster(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, id)): Path<(String, String)>,
    body: Option<Json<ClusterBody>>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    let text = body.and_then(|Json(b)| b.text);
    if text.as_ref().is_some_and(|t| t.chars().count() > 20_000) {
        return Err(Error::BadRequest("the text is too long".into()));
    }
    let item = edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        let found = cluster::clusters(&document_json(d, None))
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(Error::NotFound("cluster"))?;
        merge::consolidate(d, &found, text.as_deref(), &author).map_err(resolve_error)
    })
    .await?;
    Ok(Json(json!({ "itemId": item })))
}

async fn dismiss_cluster(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        if !cluster::clusters(&document_json(d, None))
            .iter()
            .any(|c| c.id == id)
        {
            return Err(Error::NotFound("cluster"));
        }
        merge::dismiss(d, &id, &author).map_err(|e| Error::Internal(e.to_string()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn section_error(e: SectionError) -> Error {
    match e {
        SectionError::NoSection => Error::NotFound("section"),
        SectionError::NoItem => Error::NotFound("item"),
        SectionError::BlankTitle | SectionError::LongTitle => Error::BadRequest(e.to_string()),
        SectionError::TooManySections | SectionError::FullSection | SectionError::NotEmpty => {
            Error::Conflict(e.to_string())
        }
        SectionError::Automerge(m) => Error::Internal(m),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSection {
    title: String,
    /// The id of the section to insert before; default: at the end.
    before: Option<String>,
}

async fn add_section(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
    Json(body): Json<NewSection>,
) -> Result<(StatusCode, Json<Value>)> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    let title = sections::section_title(&body.title).map_err(section_error)?;
    let t = title.clone();
    let id = edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        sections::add_section(d, &t, body.before.as_deref(), &author).map_err(section_error)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "title": title}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionPatch {
    title: String,
}

async fn rename_section(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, id)): Path<(String, String)>,
    Json(body): Json<SectionPatch>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    let title = sections::section_title(&body.title).map_err(section_error)?;
    let (i, t) = (id.clone(), title.clone());
    edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        sections::rename_section(d, &i, &t, &author).map_err(section_error)
    })
    .await?;
    Ok(Json(json!({"id": id, "title": title})))
}

async fn remove_section(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        sections::remove_section(d, &id, &author).map_err(section_error)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    /// The id of the section to move the item to (its own: reorder).
    section: String,
    /// Its position there; default: the end.
    index: Option<usize>,
}

async fn move_item(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, id)): Path<(String, String)>,
    Json(body): Json<MoveBody>,
) -> Result<StatusCode> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    edit(&state, &m.summary_doc, move |d| {
        if signoff::is_issued(d) {
            return Err(issued_conflict());
        }
        sections::move_item(d, &id, &body.section, body.index, &author).map_err(section_error)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn signoff_error(e: SignoffError) -> Error {
    match e {
        SignoffError::Issued | SignoffError::NotIssued => Error::Conflict(e.to_string()),
        SignoffError::Automerge(m) => Error::Internal(m),
    }
}

async fn approve(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    let ids = co_facilitator_ids(&state, &slug).await?;
    edit(&state, &m.summary_doc, move |d| {
        signoff::approve(d, &author, &ids, now_ms()).map_err(signoff_error)
    })
    .await?;
    let summary = read_summary(&state, &m).await?;
    Ok(Json(signoff_view(&state, &slug, &summary).await?))
}

/// Issues the meeting's summary if every co-facilitator left holds a valid approval, after one
/// was revoked (`by`: who revoked the invite, the author of the change).
pub(super) async fn issue_if_approved(state: &AppState, slug: &str, by: &Person) -> Result<()> {
    let m = state
        .store
        .meeting(slug)
        .await?
        .ok_or(Error::NotFound("meeting"))?;
    let ids = co_facilitator_ids(state, slug).await?;
    let author = Author {
        person: by.id.0.clone(),
        name: by.name.clone(),
    };
    let issued = edit(state, &m.summary_doc, move |d| {
        signoff::issue_if_approved(d, &author, &ids, now_ms()).map_err(signoff_error)
    })
    .await?;
    if issued.is_some() {
        tracing::info!(
            meeting = slug,
            "summary issued: the co-facilitators left have approved"
        );
    }
    Ok(())
}

async fn new_revision(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let author = co_facilitator(&person)?;
    let revision = edit(&state, &m.summary_doc, move |d| {
        signoff::new_revision(d, &author).map_err(signoff_error)
    })
    .await?;
    Ok(Json(json!({ "revision": revision, "state": "drafting" })))
}

async fn revision(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, r)): Path<(String, i64)>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let summary = read_summary(&state, &m).await?;
    let heads = signoff::revision_heads(&summary, r).ok_or(Error::NotFound("revision"))?;
    let heads = parse_heads(&heads).ok_or(Error::Internal("bad revision heads".into()))?;
    let doc = state
        .docs
        .read(&m.summary_doc, move |d| document_json(d, Some(&heads)))
        .await?;
    Ok(Json(doc))
}

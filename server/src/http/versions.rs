//! Versions, comparisons and exports over REST, for the chair's summary and each group's
//! outcome: earlier states at frozen heads (submissions, issued revisions), element diffs with
//! their authors, change logs, and DOCX, Markdown, HTML and JSON downloads.

use automerge::ReadDoc;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::meetings::meeting_of;
use super::summary::{outcome_at, people, read_summary};
use super::{Auth, Error, Result};
use crate::docs::json::document_json;
use crate::ids::DocId;
use crate::state::AppState;
use crate::store::SubmissionRecord;
use crate::summary::export::{self, Report};
use crate::summary::history::{self, parse_heads};
use crate::summary::signoff;
use crate::summary::state_of;

pub fn router() -> Router<AppState> {
    let base = "/api/meetings/{slug}/summary";
    let group = "/api/meetings/{slug}/groups/{n}";
    Router::new()
        .route(&format!("{base}/history"), get(summary_history))
        .route(&format!("{base}/diff"), get(summary_diff))
        .route(&format!("{base}/export"), get(summary_export))
        .route(&format!("{group}/versions/{{v}}"), get(group_version))
        .route(&format!("{group}/history"), get(group_history))
        .route(&format!("{group}/diff"), get(group_diff))
        .route(&format!("{group}/export"), get(group_export))
}

#[derive(Deserialize)]
struct DiffQuery {
    from: String,
    to: Option<String>,
}

/// Resolves a version name to heads: `current`; `v<N>` (a group's submission); `r<N>` (an
/// issued summary revision); or comma-separated change hashes.
fn version_heads(
    name: &str,
    submissions: &[SubmissionRecord],
    summary: Option<&Value>,
) -> Result<Option<Vec<String>>> {
    if name == "current" {
        return Ok(None);
    }
    if let Some(v) = name.strip_prefix('v').and_then(|v| v.parse::<u32>().ok()) {
        return submissions
            .iter()
            .find(|s| s.version == v)
            .map(|s| Some(s.heads.clone()))
            .ok_or(Error::NotFound("version"));
    }
    if let Some(r) = name.strip_prefix('r').and_then(|v| v.parse::<i64>().ok()) {
        return summary
            .and_then(|s| signoff::revision_heads(s, r))
            .map(Some)
            .ok_or(Error::NotFound("revision"));
    }
    Ok(Some(name.split(',').map(str::to_owned).collect()))
}

/// A diff or log answer with the names and roles of the people it mentions.
async fn with_people(state: &AppState, slug: &str, mut out: Value) -> Result<Json<Value>> {
    let (names, people) = people(state, slug).await?;
    out["names"] = names;
    out["people"] = people;
    Ok(Json(out))
}

async fn diff_doc(
    state: &AppState,
    doc: &DocId,
    from: Option<Vec<String>>,
    to: Option<Vec<String>>,
) -> Result<history::Diff> {
    let parse = |h: Option<Vec<String>>| -> Result<Option<Vec<automerge::ChangeHash>>> {
        h.map(|h| parse_heads(&h).ok_or(Error::BadRequest("unknown version".into())))
            .transpose()
    };
    let (from, to) = (parse(from)?, parse(to)?);
    // The owners as of the same moment as the document: an actor's first change is never
    // there without its owner.
    state
        .docs
        .read_with_owners(doc, move |d, owners| {
            let known = |h: &Option<Vec<automerge::ChangeHash>>| {
                h.as_ref()
                    .is_none_or(|h| h.iter().all(|x| d.get_change_by_hash(x).is_some()))
            };
            if !known(&from) || !known(&to) {
                return None;
            }
            let now = d.get_heads();
            Some(history::diff(
                d,
                from.as_deref().unwrap_or(&now),
                to.as_deref().unwrap_or(&now),
                owners,
            ))
        })
        .await?
        .ok_or(Error::BadRequest("unknown version".into()))
}

async fn summary_diff(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let summary = read_summary(&state, &m).await?;
    let from = version_heads(&q.from, &[], Some(&summary))?;
    let to = version_heads(q.to.as_deref().unwrap_or("current"), &[], Some(&summary))?;
    let diff = diff_doc(&state, &m.summary_doc, from, to).await?;
    with_people(&state, &slug, json!({ "diff": diff })).await
}

async fn summary_history(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let m = meeting_of(&state, &person, &slug).await?;
    let log = state
        .docs
        .read_with_owners(&m.summary_doc, |d, owners| history::log(d, 500, owners))
        .await?;
    with_people(&state, &slug, json!({ "changes": log })).await
}

async fn group_record(
    state: &AppState,
    slug: &str,
    n: u32,
) -> Result<(crate::store::GroupRecord, Vec<SubmissionRecord>)> {
    let group = state
        .store
        .groups(slug)
        .await?
        .into_iter()
        .find(|g| g.number == n)
        .ok_or(Error::NotFound("group"))?;
    let subs = state
        .store
        .submissions(slug)
        .await?
        .into_iter()
        .filter(|s| s.group == n)
        .collect();
    Ok((group, subs))
}

async fn group_version(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, n, v)): Path<(String, u32, u32)>,
) -> Result<Json<Value>> {
    meeting_of(&state, &person, &slug).await?;
    let (group, subs) = group_record(&state, &slug, n).await?;
    let sub = subs
        .iter()
        .find(|s| s.version == v)
        .ok_or(Error::NotFound("version"))?;
    let outcome = outcome_at(&state, &group.doc, &sub.heads).await?;
    Ok(Json(json!({"submission": sub, "outcome": outcome})))
}

async fn group_history(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, n)): Path<(String, u32)>,
) -> Result<Json<Value>> {
    meeting_of(&state, &person, &slug).await?;
    let (group, subs) = group_record(&state, &slug, n).await?;
    let log = state
        .docs
        .read_with_owners(&group.doc, |d, owners| history::log(d, 500, owners))
        .await?;
    with_people(
        &state,
        &slug,
        json!({ "submissions": subs, "changes": log }),
    )
    .await
}

async fn group_diff(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, n)): Path<(String, u32)>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>> {
    meeting_of(&state, &person, &slug).await?;
    let (group, subs) = group_record(&state, &slug, n).await?;
    let from = version_heads(&q.from, &subs, None)?;
    let to = version_heads(q.to.as_deref().unwrap_or("current"), &subs, None)?;
    let diff = diff_doc(&state, &group.doc, from, to).await?;
    with_people(&state, &slug, json!({ "diff": diff })).await
}

#[derive(Deserialize)]
struct ExportQuery {
    format: String,
    /// A group outcome's submission version, or a summary's issued revision; default: now.
    version: Option<String>,
}

fn today() -> String {
    let f = time::macros::format_description!("[day padding:none] [month repr:long] [year]");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}

fn download(
    report: &Report,
    doc: &Value,
    meta: Value,
    format: &str,
    name: &str,
) -> Result<Response> {
    let (ctype, body, ext): (&str, Vec<u8>, &str) = match format {
        "docx" => (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            export::docx(report),
            "docx",
        ),
        "md" => (
            "text/markdown; charset=utf-8",
            export::markdown(report).into_bytes(),
            "md",
        ),
        "html" => (
            "text/html; charset=utf-8",
            export::html(report).into_bytes(),
            "html",
        ),
        "json" => (
            "application/json",
            serde_json::to_vec_pretty(&export::json_export(doc, report, meta))
                .map_err(|e| Error::Internal(e.to_string()))?,
            "json",
        ),
        _ => return Err(Error::BadRequest("format is docx, md, html or json".into())),
    };
    // Printable HTML opens in the browser (to read or print); the other formats download.
    let kind = if ext == "html" {
        "inline"
    } else {
        "attachment"
    };
    let disposition = format!("{kind}; filename=\"{name}.{ext}\"");
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

async fn summary_export(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path(slug): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response> {
    let m = meeting_of(&state, &person, &slug).await?;
    let mut summary = read_summary(&state, &m).await?;
    if let Some(v) = &q.version {
        let r: i64 = v
            .trim_start_matches('r')
            .parse()
            .map_err(|_| Error::BadRequest("version is a revision number".into()))?;
        let heads = signoff::revision_heads(&summary, r).ok_or(Error::NotFound("revision"))?;
        let heads = parse_heads(&heads).ok_or(Error::Internal("bad revision heads".into()))?;
        summary = state
            .docs
            .read(&m.summary_doc, move |d| document_json(d, Some(&heads)))
            .await?;
    }
    let report = export::summary_report(&summary, &m.file.title, &today());
    let subs = state.store.submissions(&slug).await?;
    let meta = json!({
        "meeting": slug,
        "state": state_of(&summary),
        "groups": m.file.groups.iter().map(|g| json!({"number": g.number, "dimension": g.dimension})).collect::<Vec<_>>(),
        "submissions": subs.iter().map(|s| json!({"group": s.group, "submission": s})).collect::<Vec<_>>(),
    });
    download(&report, &summary, meta, &q.format, "chair-summary")
}

async fn group_export(
    State(state): State<AppState>,
    Auth(person): Auth,
    Path((slug, n)): Path<(String, u32)>,
    Query(q): Query<ExportQuery>,
) -> Result<Response> {
    let m = meeting_of(&state, &person, &slug).await?;
    let (group, subs) = group_record(&state, &slug, n).await?;
    let (outcome, label, sub) = match &q.version {
        Some(v) => {
            let v: u32 = v
                .trim_start_matches('v')
                .parse()
                .map_err(|_| Error::BadRequest("version is a submission number".into()))?;
            let sub = subs
                .iter()
                .find(|s| s.version == v)
                .ok_or(Error::NotFound("version"))?;
            (
                outcome_at(&state, &group.doc, &sub.heads).await?,
                format!("submission version {v}"),
                Some(sub.clone()),
            )
        }
        None => (
            state
                .docs
                .read(&group.doc, |d| document_json(d, None))
                .await?,
            "working draft".to_owned(),
            None,
        ),
    };
    let report = export::outcome_report(&outcome, &m.file.title, &today(), &label);
    let meta = json!({"meeting": slug, "group": n, "submission": sub});
    download(
        &report,
        &outcome,
        meta,
        &q.format,
        &format!("group-{n}-outcome"),
    )
}

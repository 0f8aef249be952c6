//! Sign-off: approvals, issue and revisions, kept in the summary document itself (server-owned
//! root keys `revision`, `approvals`, `revisions`), so that every viewer sees them live and no
//! table is needed.
//!
//! An approval names the content it approved (`contentHash` of title, preamble and sections).
//! Any later edit makes that approval void. When every co-facilitator of the meeting (every
//! co-facilitator invite not revoked; at least one) holds a valid approval, the summary is
//! issued: `state` becomes `issued` and the revision's frozen heads are recorded in
//! `revisions`. An issued summary refuses all changes until a co-facilitator starts the next
//! revision, which continues the same document (earlier revisions stay readable at their
//! heads).

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ReadDoc, ROOT};
use serde::Serialize;
use serde_json::{json, Value};

use super::{arr, insert_json, int, s, state_of, Author};
use crate::docs::init::child;
use crate::docs::json::{content_hash, document_json};

/// Hash of what co-facilitators approve: title, preamble and sections.
pub fn approved_content_hash(summary: &Value) -> String {
    content_hash(&json!({
        "title": summary.get("title"),
        "preamble": summary.get("preamble"),
        "sections": summary.get("sections"),
    }))
}

/// The summary's revision number (1 until a new revision is started).
pub fn revision_of(summary: &Value) -> i64 {
    int(summary, "revision").max(1)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SignoffStatus {
    pub state: String,
    pub revision: i64,
    /// Person ids whose approval is valid for the current content.
    pub approved_by: Vec<String>,
    /// Co-facilitators still to approve.
    pub waiting_for: Vec<String>,
}

impl SignoffStatus {
    /// Every co-facilitator (at least one) holds a valid approval.
    pub fn complete(&self) -> bool {
        self.waiting_for.is_empty() && !self.approved_by.is_empty()
    }
}

/// Where sign-off stands, for the given co-facilitators.
pub fn status(summary: &Value, co_facilitators: &[String]) -> SignoffStatus {
    let hash = approved_content_hash(summary);
    let approved_by: Vec<String> = arr(summary, "approvals")
        .iter()
        .filter(|a| s(a, "contentHash") == hash && int(a, "revision") == revision_of(summary))
        .map(|a| s(a, "person"))
        .collect();
    SignoffStatus {
        state: state_of(summary),
        revision: revision_of(summary),
        waiting_for: co_facilitators
            .iter()
            .filter(|p| !approved_by.contains(p))
            .cloned()
            .collect(),
        approved_by,
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SignoffError {
    #[error("the summary is issued; start a new revision to change it")]
    Issued,
    #[error("the summary is not issued")]
    NotIssued,
    #[error("{0}")]
    Automerge(String),
}

impl From<AutomergeError> for SignoffError {
    fn from(e: AutomergeError) -> Self {
        SignoffError::Automerge(e.to_string())
    }
}

/// Records `author`'s approval of the current content; issues the summary when every
/// co-facilitator has approved it. One change.
pub fn approve(
    doc: &mut Automerge,
    author: &Author,
    co_facilitators: &[String],
    now: i64,
) -> Result<SignoffStatus, SignoffError> {
    let summary = document_json(doc, None);
    if state_of(&summary) == "issued" {
        return Err(SignoffError::Issued);
    }
    let hash = approved_content_hash(&summary);
    let revision = revision_of(&summary);
    let mut approvals: Vec<Value> = arr(&summary, "approvals")
        .iter()
        .filter(|a| s(a, "person") != author.person)
        .cloned()
        .collect();
    approvals.push(
        json!({"person": author.person, "name": author.name, "at": now,
                          "contentHash": hash, "revision": revision}),
    );
    let mut after = summary.clone();
    after["approvals"] = Value::Array(approvals.clone());
    let st = status(&after, co_facilitators);
    let issue = st.complete();
    let heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    doc.transact_with(
        |_| {
            author.commit(if issue {
                "approve-and-issue"
            } else {
                "approve"
            })
        },
        |tx| {
            super::put_json(tx, &ROOT, "approvals", &Value::Array(approvals))?;
            if issue {
                record_issue(tx, revision, now, &heads, &hash)?;
            }
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(status(&document_json(doc, None), co_facilitators))
}

/// Issues the summary if every co-facilitator already holds a valid approval: for when the set
/// of co-facilitators shrinks (the last one still to approve is revoked) rather than when an
/// approval completes it. `None`, and no change, if it is issued already or someone is still to
/// approve. One change, by `author` (who revoked the invite).
pub fn issue_if_approved(
    doc: &mut Automerge,
    author: &Author,
    co_facilitators: &[String],
    now: i64,
) -> Result<Option<SignoffStatus>, SignoffError> {
    let summary = document_json(doc, None);
    let st = status(&summary, co_facilitators);
    if st.state == "issued" || !st.complete() {
        return Ok(None);
    }
    let hash = approved_content_hash(&summary);
    let revision = revision_of(&summary);
    let heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    doc.transact_with(
        |_| author.commit("issue"),
        |tx| record_issue(tx, revision, now, &heads, &hash),
    )
    .map_err(|f| f.error)?;
    Ok(Some(status(&document_json(doc, None), co_facilitators)))
}

/// Marks the summary issued and appends the revision's frozen heads and content hash to
/// `revisions`.
fn record_issue(
    tx: &mut automerge::transaction::Transaction<'_>,
    revision: i64,
    now: i64,
    heads: &[String],
    hash: &str,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, "state", "issued")?;
    let list = match child(tx, &ROOT, "revisions") {
        Some(l) => l,
        None => tx.put_object(ROOT, "revisions", ObjType::List)?,
    };
    let at = tx.length(&list);
    insert_json(
        tx,
        &list,
        at,
        &json!({"revision": revision, "issuedAt": now, "heads": heads, "contentHash": hash}),
    )
}

/// Starts the next revision of an issued summary: drafting again, approvals cleared.
pub fn new_revision(doc: &mut Automerge, author: &Author) -> Result<i64, SignoffError> {
    let summary = document_json(doc, None);
    if state_of(&summary) != "issued" {
        return Err(SignoffError::NotIssued);
    }
    let next = revision_of(&summary) + 1;
    doc.transact_with(
        |_| author.commit("new-revision"),
        |tx| {
            tx.put(ROOT, "state", "drafting")?;
            tx.put(ROOT, "revision", next)?;
            tx.put_object(ROOT, "approvals", ObjType::List)?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(next)
}

/// The frozen heads of an issued revision.
pub fn revision_heads(summary: &Value, revision: i64) -> Option<Vec<String>> {
    arr(summary, "revisions")
        .iter()
        .find(|r| int(r, "revision") == revision)
        .map(|r| {
            arr(r, "heads")
                .iter()
                .filter_map(|h| h.as_str().map(str::to_owned))
                .collect()
        })
}

/// Where the summary stands, as the meeting index shows it to everyone: `issued`; `approved`
/// while the approval of at least one co-facilitator holds for the current text (the approval
/// that completes the set issues the summary, so `approved` means "approved by some, waiting for
/// the others"); `drafting` otherwise — before any approval, after an edit voided them, and at
/// the start of each new revision.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IndexSummary {
    pub state: String,
    pub revision: i64,
    /// Names of the co-facilitators whose approval holds for the current text.
    pub approved_by: Vec<String>,
}

/// The index's view of a summary document. Cheap while no approval is recorded for the
/// revision (the common case while co-facilitators type); otherwise it hashes the content.
pub fn index_summary(doc: &Automerge) -> IndexSummary {
    let revision = match doc.get(ROOT, "revision") {
        Ok(Some((automerge::Value::Scalar(v), _))) => v.as_i64().unwrap_or(1).max(1),
        _ => 1,
    };
    let approvals = child(doc, &ROOT, "approvals").map_or(0, |l| doc.length(&l));
    if approvals == 0 {
        let state = if is_issued(doc) { "issued" } else { "drafting" };
        return IndexSummary {
            state: state.into(),
            revision,
            approved_by: Vec::new(),
        };
    }
    index_summary_of(&document_json(doc, None))
}

/// `index_summary` of the summary's JSON view.
pub fn index_summary_of(summary: &Value) -> IndexSummary {
    let st = status(summary, &[]);
    let approved_by: Vec<String> = arr(summary, "approvals")
        .iter()
        .filter(|a| st.approved_by.contains(&s(a, "person")))
        .map(|a| s(a, "name"))
        .collect();
    let state = if st.state == "issued" {
        "issued"
    } else if approved_by.is_empty() {
        "drafting"
    } else {
        "approved"
    };
    IndexSummary {
        state: state.into(),
        revision: st.revision,
        approved_by,
    }
}

/// Whether a document's root says it is issued (for the schema check).
pub fn is_issued(doc: &Automerge) -> bool {
    matches!(doc.get(ROOT, "state"), Ok(Some((automerge::Value::Scalar(v), _))) if v.as_str() == Some("issued"))
}

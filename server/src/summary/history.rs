//! Versions and comparisons of outcome and summary documents.
//!
//! A document's earlier state is its JSON at earlier heads (a submission's, a revision's, or
//! any heads from the change log). Two states compare element by element — bullets of an
//! outcome, items of a summary, matched by their stable id — into added, removed and changed,
//! each with who did it. A client's change is its actor's owner's: the person whose connection
//! first wrote with that actor (the store records it before storing the change, and refuses
//! anyone else's change with it; see `docs/protocol.md`). A server edit names the person who
//! asked for it in its commit message (see [`super::Author`]) — trusted only from actors no
//! client owns, so that a client cannot pass its change off as someone else's by writing such a
//! message. Anything else (changes from before owners were recorded) is `actor:<hex>`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use automerge::legacy::{ObjectId, OpType};
use automerge::{Automerge, ChangeHash, Prop, ReadDoc};
use serde::Serialize;
use serde_json::Value;

use super::{arr, s, Author};
use crate::docs::json::document_json;
use crate::docs::schema::ActorOwners;

/// Parses hex change hashes.
pub fn parse_heads(heads: &[String]) -> Option<Vec<ChangeHash>> {
    heads.iter().map(|h| ChangeHash::from_str(h).ok()).collect()
}

/// One element (bullet or item) of a document state.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Element {
    pub id: String,
    pub section_id: String,
    pub text: String,
}

fn elements(doc_json: &Value) -> BTreeMap<String, Element> {
    let mut out = BTreeMap::new();
    for section in arr(doc_json, "sections") {
        let list = if section.get("bullets").is_some() {
            arr(section, "bullets")
        } else {
            arr(section, "items")
        };
        for e in list {
            out.insert(
                s(e, "id"),
                Element {
                    id: s(e, "id"),
                    section_id: s(section, "id"),
                    text: s(e, "text"),
                },
            );
        }
    }
    out
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    pub id: String,
    pub section_id: String,
    pub old_text: String,
    pub new_text: String,
    pub by: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Touched {
    #[serde(flatten)]
    pub element: Element,
    pub by: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    pub added: Vec<Touched>,
    pub removed: Vec<Touched>,
    pub changed: Vec<Changed>,
    /// Everyone whose changes lie between the two states.
    pub authors: Vec<String>,
}

/// Who wrote a change: a person id, or `actor:<hex>` when unknown.
fn author_of(change: &automerge::Change, owners: &ActorOwners) -> String {
    if let Some(person) = owners.get(change.actor_id()) {
        return person.clone();
    }
    if let Some(a) = change.message().and_then(Author::from_message) {
        return a.person;
    }
    let actor = change.actor_id().to_hex_string();
    format!("actor:{}", &actor[..actor.len().min(12)])
}

/// The id of the bullet or item whose map was inserted as list element `element`, if it is one.
fn deleted_element(doc: &Automerge, element: &automerge::legacy::ElementId) -> Option<String> {
    let automerge::legacy::ElementId::Id(op) = element else {
        return None;
    };
    let obj = doc.import_obj(&op.to_string()).ok()?;
    match doc.get(&obj, "id").ok()?? {
        (automerge::Value::Scalar(v), _) => v.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The element id an object lies in (the map in a `bullets`/`items` list that holds it).
fn element_of(doc: &Automerge, obj: &automerge::ObjId) -> Option<String> {
    let path = doc.parents(obj).ok()?.path();
    let mut element = None;
    for (k, (_, prop)) in path.iter().enumerate() {
        if let Prop::Seq(_) = prop {
            if k > 0
                && matches!(&path[k - 1].1, Prop::Map(key) if key == "bullets" || key == "items")
            {
                element = Some(path.get(k + 1).map(|p| p.0.clone()).unwrap_or(obj.clone()));
            }
        }
    }
    let e = element?;
    match doc.get(&e, "id").ok()?? {
        (automerge::Value::Scalar(v), _) => v.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Compares the document at `from` with the document at `to` (both heads of `doc`); `owners`
/// names the writers of client changes.
pub fn diff(doc: &Automerge, from: &[ChangeHash], to: &[ChangeHash], owners: &ActorOwners) -> Diff {
    let old = elements(&document_json(doc, Some(from)));
    let at_to = doc.fork_at(to).unwrap_or_else(|_| doc.clone());
    let new = elements(&document_json(&at_to, None));
    let changes = at_to.get_changes(from);

    // Who touched each element (its fields, its text, or by inserting it), and who deleted it.
    let mut by: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut deleted_by: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut authors = BTreeSet::new();
    for change in &changes {
        let who = author_of(change, owners);
        authors.insert(who.clone());
        let decoded = change.decode();
        for (i, op) in decoded.operations.iter().enumerate() {
            if let (OpType::Delete, automerge::legacy::Key::Seq(element)) = (&op.action, &op.key) {
                if let Some(e) = deleted_element(&at_to, element) {
                    deleted_by.entry(e).or_default().insert(who.clone());
                }
            }
            let mut objs = Vec::new();
            if let ObjectId::Id(id) = &op.obj {
                if let Ok(o) = at_to.import_obj(&id.to_string()) {
                    objs.push(o);
                }
            }
            if matches!(op.action, OpType::Make(_)) {
                let created = format!(
                    "{}@{}",
                    change.start_op().get() + i as u64,
                    change.actor_id()
                );
                if let Ok(o) = at_to.import_obj(&created) {
                    objs.push(o);
                }
            }
            for o in objs {
                if let Some(e) = element_of(&at_to, &o) {
                    by.entry(e).or_default().insert(who.clone());
                }
            }
        }
    }
    let who = |id: &str| -> Vec<String> {
        by.get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    };
    let mut d = Diff {
        authors: authors.into_iter().collect(),
        ..Default::default()
    };
    for (id, e) in &new {
        match old.get(id) {
            None => d.added.push(Touched {
                element: e.clone(),
                by: who(id),
            }),
            Some(o) if o.text != e.text || o.section_id != e.section_id => {
                d.changed.push(Changed {
                    id: id.clone(),
                    section_id: e.section_id.clone(),
                    old_text: o.text.clone(),
                    new_text: e.text.clone(),
                    by: who(id),
                })
            }
            _ => {}
        }
    }
    for (id, e) in &old {
        if !new.contains_key(id) {
            // Every removal is some change's delete; should none be found, everyone whose
            // changes lie between the two states.
            let by = deleted_by
                .get(id)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_else(|| d.authors.clone());
            d.removed.push(Touched {
                element: e.clone(),
                by,
            });
        }
    }
    d
}

/// One entry of a document's change log.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub hash: String,
    /// Seconds since the epoch as the writer's clock said (0 when not set).
    pub time: i64,
    pub by: String,
    pub message: Option<String>,
}

/// The change log, oldest first (capped at the last `limit` changes).
pub fn log(doc: &Automerge, limit: usize, owners: &ActorOwners) -> Vec<LogEntry> {
    let changes = doc.get_changes(&[]);
    let skip = changes.len().saturating_sub(limit);
    changes
        .iter()
        .skip(skip)
        .map(|c| LogEntry {
            hash: c.hash().to_string(),
            time: c.timestamp(),
            by: author_of(c, owners),
            message: c.message().map(str::to_owned),
        })
        .collect()
}

//! The chair's summary: the co-facilitators' merge of the groups' submitted outcomes, its
//! consolidation, sign-off, history and exports.
//!
//! Everything here is sans-IO over `Automerge` documents and JSON views of them; the HTTP
//! layer (`http::summary`) reads and edits documents through `Docs::read` and `Docs::edit`, so
//! that each server edit is one Automerge change, attributed to the person who asked for it
//! (its commit message, see [`Author`]), stored before anyone is synced.
//!
//! Invariants:
//! - every item that came from a group cites its source bullets (`sources`), and a source bullet
//!   is cited by at most one item, so merging again never adds it twice;
//! - the server never overwrites an item's text without a co-facilitator's action: a changed
//!   source marks the item `stale`, a removed one marks it `removedAtSource`;
//! - an issued summary is read-only (the schema check refuses every change; REST edits answer
//!   409) until a co-facilitator starts a new revision.

pub mod cluster;
pub mod export;
pub mod history;
pub mod merge;
pub mod sections;
pub mod signoff;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutomergeError, ObjId, ObjType, ReadDoc, ROOT};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::docs::init::child;

/// Who made a server edit. Stored as the change's commit message (JSON), which is how the
/// history names people for server edits.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Author {
    pub person: String,
    pub name: String,
}

impl Author {
    pub fn commit(&self, action: &str) -> CommitOptions {
        let msg = serde_json::json!({"person": self.person, "name": self.name, "action": action});
        CommitOptions::default().with_message(msg.to_string())
    }

    /// The author recorded in a commit message, if it is one of ours.
    pub fn from_message(msg: &str) -> Option<Author> {
        serde_json::from_str(msg).ok()
    }
}

/// A bullet of a submitted outcome, as the summary cites it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceBullet {
    pub id: String,
    pub text: String,
    pub tags: Vec<String>,
}

/// A group's submission, read at its frozen heads.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub group: u32,
    /// The group's dimension: the title of its section, should the merge need to add it.
    pub dimension: String,
    pub version: u32,
    pub bullets: Vec<SourceBullet>,
}

/// The bullets of an outcome document (its JSON view), in section order.
pub fn bullets_of(outcome: &Value) -> Vec<SourceBullet> {
    let mut out = Vec::new();
    for section in arr(outcome, "sections") {
        for b in arr(section, "bullets") {
            out.push(SourceBullet {
                id: s(b, "id"),
                text: s(b, "text"),
                tags: arr(b, "tags")
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
            });
        }
    }
    out
}

/// The list at `key` of a JSON object, or an empty one.
pub fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The string at `key` of a JSON object, or an empty one.
pub fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The integer at `key` of a JSON object, or 0.
pub fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or_default()
}

/// The summary's state (`drafting` or `issued`).
pub fn state_of(summary: &Value) -> String {
    let st = s(summary, "state");
    if st.is_empty() {
        "drafting".into()
    } else {
        st
    }
}

/// Where an item sits: section and item positions, for edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemPos {
    pub section: usize,
    pub item: usize,
}

/// Finds an item by id in the summary's JSON view.
pub fn find_item<'a>(summary: &'a Value, id: &str) -> Option<(ItemPos, &'a Value)> {
    for (si, section) in arr(summary, "sections").iter().enumerate() {
        for (ii, item) in arr(section, "items").iter().enumerate() {
            if s(item, "id") == id {
                return Some((
                    ItemPos {
                        section: si,
                        item: ii,
                    },
                    item,
                ));
            }
        }
    }
    None
}

fn missing(what: &str) -> AutomergeError {
    AutomergeError::InvalidObjId(what.to_owned())
}

/// The list of items of section `section`.
pub(crate) fn items_obj<T: ReadDoc>(tx: &T, section: usize) -> Result<ObjId, AutomergeError> {
    let sections = child(tx, &ROOT, "sections").ok_or_else(|| missing("sections"))?;
    let s = match tx.get(&sections, section)? {
        Some((automerge::Value::Object(_), id)) => id,
        _ => return Err(missing("section")),
    };
    child(tx, &s, "items").ok_or_else(|| missing("items"))
}

/// The map of the item at `pos`.
pub(crate) fn item_obj<T: ReadDoc>(tx: &T, pos: ItemPos) -> Result<ObjId, AutomergeError> {
    let items = items_obj(tx, pos.section)?;
    match tx.get(&items, pos.item)? {
        Some((automerge::Value::Object(_), id)) => Ok(id),
        _ => Err(missing("item")),
    }
}

/// Writes a JSON value as Automerge data, strings as scalar strings (collaborative text is
/// written by the callers that need it).
pub(crate) fn put_json<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &Value,
) -> Result<(), AutomergeError> {
    match value {
        Value::String(v) => tx.put(obj, key, v.as_str())?,
        Value::Number(n) => tx.put(obj, key, n.as_i64().unwrap_or_default())?,
        Value::Bool(b) => tx.put(obj, key, *b)?,
        Value::Null => tx.put(obj, key, automerge::ScalarValue::Null)?,
        Value::Array(items) => {
            let list = tx.put_object(obj, key, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                insert_json(tx, &list, i, item)?;
            }
        }
        Value::Object(map) => {
            let m = tx.put_object(obj, key, ObjType::Map)?;
            for (k, v) in map {
                put_json(tx, &m, k, v)?;
            }
        }
    }
    Ok(())
}

pub(crate) fn insert_json<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    at: usize,
    value: &Value,
) -> Result<(), AutomergeError> {
    match value {
        Value::String(v) => tx.insert(list, at, v.as_str())?,
        Value::Number(n) => tx.insert(list, at, n.as_i64().unwrap_or_default())?,
        Value::Bool(b) => tx.insert(list, at, *b)?,
        Value::Null => tx.insert(list, at, automerge::ScalarValue::Null)?,
        Value::Array(items) => {
            let l = tx.insert_object(list, at, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                insert_json(tx, &l, i, item)?;
            }
        }
        Value::Object(map) => {
            let m = tx.insert_object(list, at, ObjType::Map)?;
            for (k, v) in map {
                put_json(tx, &m, k, v)?;
            }
        }
    }
    Ok(())
}

/// A fresh item id.
pub fn new_item_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

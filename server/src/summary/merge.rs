//! Merge, re-merge and the co-facilitators' decisions on stale items.
//!
//! `merge` takes the latest submission of each group. A bullet no item cites becomes a new item
//! in its group's section (`group-N`, added again at the end if a co-facilitator removed it),
//! citing `{group, bulletId, version, text, tags}` and remembering the merged text
//! (`mergedText`) so that anyone can tell whether a co-facilitator edited it since. A bullet already cited at an older version is compared with the text the
//! item cites: unchanged, the citation moves to the new version; changed, the item is marked
//! `stale` with the old and new text side by side and its text is left alone. A cited bullet
//! missing from the new version marks the item `removedAtSource`; nothing is ever dropped.
//! Re-running a merge with the same versions changes nothing.

use std::collections::HashMap;

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ReadDoc, ROOT};
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    arr, insert_json, int, item_obj, items_obj, new_item_id, put_json, s, Author, ItemPos,
    Submitted,
};
use crate::docs::init::child;
use crate::docs::json::document_json;

/// What a merge did.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeReport {
    pub added: usize,
    /// Citations moved to a newer version whose text did not change.
    pub refreshed: usize,
    pub stale: usize,
    pub removed_at_source: usize,
}

/// One citation of a source bullet by an item.
struct Cite {
    pos: ItemPos,
    source_index: usize,
    version: i64,
    text: String,
}

/// Every citation in the summary, by (group, bullet id).
fn citations(summary: &Value) -> HashMap<(i64, String), Vec<Cite>> {
    let mut out: HashMap<(i64, String), Vec<Cite>> = HashMap::new();
    for (si, section) in arr(summary, "sections").iter().enumerate() {
        for (ii, item) in arr(section, "items").iter().enumerate() {
            for (k, src) in arr(item, "sources").iter().enumerate() {
                out.entry((int(src, "group"), s(src, "bulletId")))
                    .or_default()
                    .push(Cite {
                        pos: ItemPos {
                            section: si,
                            item: ii,
                        },
                        source_index: k,
                        version: int(src, "version"),
                        text: s(src, "text"),
                    });
            }
        }
    }
    out
}

fn flagged(item: &Value, key: &str, group: i64, bullet: &str, version: i64) -> bool {
    arr(item, key).iter().any(|f| {
        int(f, "group") == group && s(f, "bulletId") == bullet && int(f, "version") == version
    })
}

fn item_at(summary: &Value, pos: ItemPos) -> &Value {
    &arr(&arr(summary, "sections")[pos.section], "items")[pos.item]
}

/// Appends `entry` to the list at `key` of an item, replacing an entry for the same source.
fn push_flag<T: Transactable>(
    tx: &mut T,
    item: &Value,
    pos: ItemPos,
    key: &str,
    entry: Value,
) -> Result<(), AutomergeError> {
    let obj = item_obj(tx, pos)?;
    let mut list: Vec<Value> = arr(item, key)
        .iter()
        .filter(|f| {
            !(int(f, "group") == int(&entry, "group") && s(f, "bulletId") == s(&entry, "bulletId"))
        })
        .cloned()
        .collect();
    list.push(entry);
    put_json(tx, &obj, key, &Value::Array(list))
}

/// Merges the given submissions into the summary in one change attributed to `author`.
pub fn merge(
    doc: &mut Automerge,
    submissions: &[Submitted],
    author: &Author,
) -> Result<MergeReport, AutomergeError> {
    let summary = document_json(doc, None);
    let cites = citations(&summary);
    let sections: Vec<String> = arr(&summary, "sections")
        .iter()
        .map(|s_| s(s_, "id"))
        .collect();
    let result = doc.transact_with(
        |_| author.commit("merge"),
        |tx| {
            let mut report = MergeReport::default();
            let sections_obj = child(tx, &ROOT, "sections")
                .ok_or(AutomergeError::InvalidObjId("sections".into()))?;
            let mut section_count = sections.len();
            for sub in submissions {
                let g = i64::from(sub.group);
                let v = i64::from(sub.version);
                let section_id = format!("group-{}", sub.group);
                // A co-facilitator may have removed the group's section (empty, its items
                // moved to thematic sections): it comes back only for a new item.
                let mut section = sections.iter().position(|id| *id == section_id);
                for bullet in &sub.bullets {
                    match cites.get(&(g, bullet.id.clone())) {
                        None => {
                            let section = match section {
                                Some(i) => i,
                                None => {
                                    let o = tx.insert_object(
                                        &sections_obj,
                                        section_count,
                                        ObjType::Map,
                                    )?;
                                    tx.put(&o, "id", section_id.as_str())?;
                                    tx.put(&o, "title", sub.dimension.as_str())?;
                                    tx.put_object(&o, "items", ObjType::List)?;
                                    section_count += 1;
                                    *section.insert(section_count - 1)
                                }
                            };
                            let items = items_obj(tx, section)?;
                            let at = tx.length(&items);
                            let o = tx.insert_object(&items, at, ObjType::Map)?;
                            tx.put(&o, "id", new_item_id())?;
                            let t = tx.put_object(&o, "text", ObjType::Text)?;
                            tx.splice_text(&t, 0, 0, &bullet.text)?;
                            tx.put(&o, "mergedText", bullet.text.as_str())?;
                            let sources = tx.put_object(&o, "sources", ObjType::List)?;
                            insert_json(
                                tx,
                                &sources,
                                0,
                                &json!({"group": g, "bulletId": bullet.id, "version": v,
                                        "text": bullet.text, "tags": bullet.tags}),
                            )?;
                            report.added += 1;
                        }
                        Some(list) => {
                            for cite in list.iter().filter(|c| c.version < v) {
                                let item = item_at(&summary, cite.pos);
                                if cite.text == bullet.text {
                                    let obj = item_obj(tx, cite.pos)?;
                                    let sources = child(tx, &obj, "sources")
                                        .ok_or(AutomergeError::InvalidObjId("sources".into()))?;
                                    let src = match tx.get(&sources, cite.source_index)? {
                                        Some((automerge::Value::Object(_), id)) => id,
                                        _ => continue,
                                    };
                                    tx.put(&src, "version", v)?;
                                    put_json(tx, &src, "tags", &json!(bullet.tags))?;
                                    report.refreshed += 1;
                                } else if !flagged(item, "stale", g, &bullet.id, v) {
                                    push_flag(
                                        tx,
                                        item,
                                        cite.pos,
                                        "stale",
                                        json!({"group": g, "bulletId": bullet.id, "version": v,
                                               "oldText": cite.text, "newText": bullet.text}),
                                    )?;
                                    report.stale += 1;
                                }
                            }
                        }
                    }
                }
                // Cited bullets of this group that the new version no longer has.
                for ((cg, bullet_id), list) in &cites {
                    if *cg != g || sub.bullets.iter().any(|b| b.id == *bullet_id) {
                        continue;
                    }
                    for cite in list.iter().filter(|c| c.version < v) {
                        let item = item_at(&summary, cite.pos);
                        if !arr(item, "removedAtSource")
                            .iter()
                            .any(|f| int(f, "group") == g && s(f, "bulletId") == *bullet_id)
                        {
                            push_flag(
                                tx,
                                item,
                                cite.pos,
                                "removedAtSource",
                                json!({"group": g, "bulletId": bullet_id, "version": v}),
                            )?;
                            report.removed_at_source += 1;
                        }
                    }
                }
            }
            Ok::<_, AutomergeError>(report)
        },
    );
    result.map(|s| s.result).map_err(|f| f.error)
}

/// A co-facilitator's decision on a stale or removed-at-source item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Replace the item's text by the source's new text.
    TakeSource,
    /// Keep the item's text as it is (edited or not); cite the new version.
    KeepMine,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResolveError {
    #[error("no such item")]
    NoItem,
    #[error("the item has nothing to resolve")]
    NothingToResolve,
    #[error("the item cites several bullets and its text no longer contains the old source text; edit it and keep yours")]
    Ambiguous,
    #[error("{0}")]
    Automerge(String),
}

impl From<AutomergeError> for ResolveError {
    fn from(e: AutomergeError) -> Self {
        ResolveError::Automerge(e.to_string())
    }
}

/// Resolves an item's `stale` and `removedAtSource` flags, in one change by `author`.
pub fn resolve(
    doc: &mut Automerge,
    item_id: &str,
    decision: Decision,
    author: &Author,
) -> Result<(), ResolveError> {
    let summary = document_json(doc, None);
    let (pos, item) = super::find_item(&summary, item_id).ok_or(ResolveError::NoItem)?;
    let stale = arr(item, "stale").to_vec();
    let removed = arr(item, "removedAtSource");
    if stale.is_empty() && removed.is_empty() {
        return Err(ResolveError::NothingToResolve);
    }
    let current = s(item, "text");
    let sources = arr(item, "sources");
    let new_text = match decision {
        Decision::KeepMine => None,
        Decision::TakeSource if stale.is_empty() => None,
        Decision::TakeSource if sources.len() == 1 && stale.len() == 1 => {
            Some(s(&stale[0], "newText"))
        }
        Decision::TakeSource => {
            let mut text = current.clone();
            for st in &stale {
                let old = s(st, "oldText");
                if old.is_empty() || !text.contains(&old) {
                    return Err(ResolveError::Ambiguous);
                }
                text = text.replacen(&old, &s(st, "newText"), 1);
            }
            Some(text)
        }
    };
    let updated_sources: Vec<Value> = sources
        .iter()
        .map(|src| {
            let mut src = src.clone();
            if let Some(st) = stale.iter().find(|st| {
                int(st, "group") == int(&src, "group") && s(st, "bulletId") == s(&src, "bulletId")
            }) {
                src["version"] = json!(int(st, "version"));
                src["text"] = json!(s(st, "newText"));
            }
            src
        })
        .collect();
    doc.transact_with(
        |_| author.commit("resolve"),
        |tx| {
            let obj = item_obj(tx, pos)?;
            if let Some(text) = &new_text {
                let t =
                    child(tx, &obj, "text").ok_or(AutomergeError::InvalidObjId("text".into()))?;
                tx.update_text(&t, text)?;
                tx.put(&obj, "mergedText", text.as_str())?;
            }
            put_json(tx, &obj, "sources", &Value::Array(updated_sources))?;
            for key in ["stale", "removedAtSource"] {
                if tx.get(&obj, key)?.is_some() {
                    tx.delete(&obj, key)?;
                }
            }
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(())
}

/// Takes the source's text for every stale item whose text nobody edited since the merge (its
/// text is still `mergedText`), in one action (one change per item). Returns how many items it updated.
pub fn update_unedited(doc: &mut Automerge, author: &Author) -> Result<usize, AutomergeError> {
    let summary = document_json(doc, None);
    let mut ids = Vec::new();
    for section in arr(&summary, "sections") {
        for item in arr(section, "items") {
            if arr(item, "stale").len() == 1
                && arr(item, "sources").len() == 1
                && arr(item, "removedAtSource").is_empty()
                && s(item, "text") == s(item, "mergedText")
            {
                ids.push(s(item, "id"));
            }
        }
    }
    for id in &ids {
        resolve(doc, id, Decision::TakeSource, author)
            .map_err(|e| AutomergeError::InvalidObjId(e.to_string()))?;
    }
    Ok(ids.len())
}

/// Merges a proposed cluster into one item that cites every source of its items, in one change
/// by `author`. The new item takes the place of the cluster's first item; the other items leave
/// the summary but stay recorded in `consolidatedFrom` (and the source bullets are untouched).
/// Returns the new item's id.
pub fn consolidate(
    doc: &mut Automerge,
    cluster: &super::cluster::Cluster,
    text: Option<&str>,
    author: &Author,
) -> Result<String, ResolveError> {
    let summary = document_json(doc, None);
    let mut positions = Vec::new();
    for m in &cluster.items {
        let (pos, item) = super::find_item(&summary, &m.item_id).ok_or(ResolveError::NoItem)?;
        positions.push((pos, item.clone()));
    }
    let (first, first_item) = positions[0].clone();
    let text = text
        .map(str::to_owned)
        .unwrap_or_else(|| s(&first_item, "text"));
    let sources: Vec<Value> = positions
        .iter()
        .flat_map(|(_, i)| arr(i, "sources").to_vec())
        .collect();
    let from: Vec<Value> = positions
        .iter()
        .map(|(_, i)| json!({"itemId": s(i, "id"), "text": s(i, "text")}))
        .collect();
    let id = new_item_id();
    let new_id = id.clone();
    doc.transact_with(
        |_| author.commit("consolidate"),
        |tx| {
            // Delete from the back so that earlier positions stay valid.
            let mut doomed: Vec<ItemPos> = positions.iter().map(|(p, _)| *p).collect();
            doomed.sort_by_key(|p| std::cmp::Reverse((p.section, p.item)));
            for pos in &doomed {
                let items = items_obj(tx, pos.section)?;
                tx.delete(&items, pos.item)?;
            }
            let before_first = doomed
                .iter()
                .filter(|p| p.section == first.section && p.item < first.item)
                .count();
            let items = items_obj(tx, first.section)?;
            let o = tx.insert_object(&items, first.item - before_first, ObjType::Map)?;
            tx.put(&o, "id", new_id.as_str())?;
            let t = tx.put_object(&o, "text", ObjType::Text)?;
            tx.splice_text(&t, 0, 0, &text)?;
            tx.put(&o, "mergedText", text.as_str())?;
            put_json(tx, &o, "sources", &Value::Array(sources))?;
            put_json(tx, &o, "consolidatedFrom", &Value::Array(from))?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(id)
}

/// Keeps a proposed cluster's items apart: its id joins `dismissedClusters`.
pub fn dismiss(
    doc: &mut Automerge,
    cluster_id: &str,
    author: &Author,
) -> Result<(), AutomergeError> {
    doc.transact_with(
        |_| author.commit("dismiss-cluster"),
        |tx| {
            let list = match child(tx, &ROOT, "dismissedClusters") {
                Some(l) => l,
                None => tx.put_object(ROOT, "dismissedClusters", ObjType::List)?,
            };
            let at = tx.length(&list);
            tx.insert(&list, at, cluster_id)?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(())
}

#[cfg(test)]
mod tests;

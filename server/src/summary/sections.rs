//! Thematic sections of the chair's summary and moving items between sections, as server
//! edits (the REST API). Co-facilitators do the same over sync; the schema check holds both to
//! the same rules: section ids are unique and never change, a section goes away only empty,
//! and nothing goes into a section that has gone.
//!
//! The merge puts new items in the section of their group (`group-N`); co-facilitators add
//! thematic sections beside those, rename any section, move items into them, and remove a
//! section once it is empty (a removed `group-N` section comes back when the merge has a new
//! item for it). An item moves as a delete plus an insert of a copy — Automerge lists have no
//! move — keeping its id, text, sources and flags.

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ReadDoc, ROOT};
use serde_json::Value;

use super::{arr, find_item, items_obj, put_json, s, Author};
use crate::docs::init::child;
use crate::docs::json::document_json;
use crate::docs::schema::{MAX_ITEMS_PER_SECTION, MAX_SUMMARY_SECTIONS};

/// The most characters of a section title (the schema's limit for titles).
pub const MAX_SECTION_TITLE_CHARS: usize = 500;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SectionError {
    #[error("no such section")]
    NoSection,
    #[error("no such item")]
    NoItem,
    #[error("a section title must not be blank")]
    BlankTitle,
    #[error("a section title is at most {MAX_SECTION_TITLE_CHARS} characters")]
    LongTitle,
    #[error("the summary holds at most {MAX_SUMMARY_SECTIONS} sections")]
    TooManySections,
    #[error("a section holds at most {MAX_ITEMS_PER_SECTION} items")]
    FullSection,
    #[error("the section holds items: move or delete them first")]
    NotEmpty,
    #[error("{0}")]
    Automerge(String),
}

impl From<AutomergeError> for SectionError {
    fn from(e: AutomergeError) -> Self {
        SectionError::Automerge(e.to_string())
    }
}

/// A section title as given, trimmed; refused when blank or too long.
pub fn section_title(title: &str) -> Result<String, SectionError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(SectionError::BlankTitle);
    }
    if title.chars().count() > MAX_SECTION_TITLE_CHARS {
        return Err(SectionError::LongTitle);
    }
    Ok(title.to_owned())
}

/// The position of section `id` in the summary's JSON view.
fn section_index(summary: &Value, id: &str) -> Result<usize, SectionError> {
    arr(summary, "sections")
        .iter()
        .position(|sec| s(sec, "id") == id)
        .ok_or(SectionError::NoSection)
}

/// A fresh thematic section id.
pub fn new_section_id() -> String {
    format!("theme-{}", uuid::Uuid::new_v4().simple())
}

/// Adds a thematic section titled `title`, before section `before` or at the end, in one
/// change by `author`. Returns its id.
pub fn add_section(
    doc: &mut Automerge,
    title: &str,
    before: Option<&str>,
    author: &Author,
) -> Result<String, SectionError> {
    let title = section_title(title)?;
    let summary = document_json(doc, None);
    let count = arr(&summary, "sections").len();
    if count >= MAX_SUMMARY_SECTIONS {
        return Err(SectionError::TooManySections);
    }
    let at = match before {
        Some(id) => section_index(&summary, id)?,
        None => count,
    };
    let id = new_section_id();
    doc.transact_with(
        |_| author.commit("add-section"),
        |tx| {
            let sections = child(tx, &ROOT, "sections")
                .ok_or(AutomergeError::InvalidObjId("sections".into()))?;
            let o = tx.insert_object(&sections, at, ObjType::Map)?;
            tx.put(&o, "id", id.as_str())?;
            tx.put(&o, "title", title.as_str())?;
            tx.put_object(&o, "items", ObjType::List)?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(id)
}

/// Renames section `id` (any section, the groups' too), in one change by `author`.
pub fn rename_section(
    doc: &mut Automerge,
    id: &str,
    title: &str,
    author: &Author,
) -> Result<(), SectionError> {
    let title = section_title(title)?;
    let summary = document_json(doc, None);
    let at = section_index(&summary, id)?;
    if s(&arr(&summary, "sections")[at], "title") == title {
        return Ok(());
    }
    doc.transact_with(
        |_| author.commit("rename-section"),
        |tx| {
            let section = section_obj(tx, at)?;
            tx.put(&section, "title", title.as_str())?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(())
}

/// Removes section `id` if it holds no items, in one change by `author`.
pub fn remove_section(doc: &mut Automerge, id: &str, author: &Author) -> Result<(), SectionError> {
    let summary = document_json(doc, None);
    let at = section_index(&summary, id)?;
    if !arr(&arr(&summary, "sections")[at], "items").is_empty() {
        return Err(SectionError::NotEmpty);
    }
    doc.transact_with(
        |_| author.commit("remove-section"),
        |tx| {
            let sections = child(tx, &ROOT, "sections")
                .ok_or(AutomergeError::InvalidObjId("sections".into()))?;
            tx.delete(&sections, at)?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(())
}

/// Moves item `item_id` to section `to`, at position `index` there (default: the end; clamped),
/// in one change by `author`. Moving within one section reorders it.
pub fn move_item(
    doc: &mut Automerge,
    item_id: &str,
    to: &str,
    index: Option<usize>,
    author: &Author,
) -> Result<(), SectionError> {
    let summary = document_json(doc, None);
    let (from, item) = find_item(&summary, item_id).ok_or(SectionError::NoItem)?;
    let target = section_index(&summary, to)?;
    let len = arr(&arr(&summary, "sections")[target], "items").len();
    let room = if target == from.section { len - 1 } else { len };
    if target != from.section && len >= MAX_ITEMS_PER_SECTION {
        return Err(SectionError::FullSection);
    }
    let at = index.unwrap_or(room).min(room);
    if target == from.section && at == from.item {
        return Ok(());
    }
    let text = s(item, "text");
    let fields: Vec<(&String, &Value)> = item
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.as_str() != "text").collect())
        .unwrap_or_default();
    doc.transact_with(
        |_| author.commit("move-item"),
        |tx| {
            let items = items_obj(tx, from.section)?;
            tx.delete(&items, from.item)?;
            let dest = items_obj(tx, target)?;
            let o = tx.insert_object(&dest, at, ObjType::Map)?;
            for (k, v) in &fields {
                put_json(tx, &o, k, v)?;
            }
            let t = tx.put_object(&o, "text", ObjType::Text)?;
            tx.splice_text(&t, 0, 0, &text)?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(())
}

fn section_obj<T: ReadDoc>(tx: &T, at: usize) -> Result<automerge::ObjId, AutomergeError> {
    let sections =
        child(tx, &ROOT, "sections").ok_or(AutomergeError::InvalidObjId("sections".into()))?;
    match tx.get(&sections, at)? {
        Some((automerge::Value::Object(_), id)) => Ok(id),
        _ => Err(AutomergeError::InvalidObjId("section".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::{init, schema};
    use crate::meeting::MeetingFile;
    use crate::summary::merge::merge;
    use crate::summary::{SourceBullet, Submitted};

    fn me() -> Author {
        Author {
            person: "p-cofac".into(),
            name: "Co-facilitator, Switzerland".into(),
        }
    }

    fn merged() -> Automerge {
        let mut doc = Automerge::load(&init::chair_summary(&MeetingFile::demo()).unwrap()).unwrap();
        let bullet = |id: &str, text: &str| SourceBullet {
            id: id.into(),
            text: text.into(),
            tags: vec!["gcm-objective-20".into()],
        };
        let subs = [Submitted {
            group: 1,
            dimension: "Human rights".into(),
            version: 1,
            bullets: vec![
                bullet("a", "Lower remittance costs"),
                bullet("b", "Protect the rights of all migrants"),
            ],
        }];
        merge(&mut doc, &subs, &me()).unwrap();
        doc
    }

    fn section_ids(doc: &Automerge) -> Vec<String> {
        arr(&document_json(doc, None), "sections")
            .iter()
            .map(|sec| s(sec, "id"))
            .collect()
    }

    fn item_ids(doc: &Automerge, section: &str) -> Vec<String> {
        let j = document_json(doc, None);
        let sec = arr(&j, "sections")
            .iter()
            .find(|sec| s(sec, "id") == section)
            .unwrap()
            .clone();
        arr(&sec, "items").iter().map(|i| s(i, "id")).collect()
    }

    #[test]
    fn a_thematic_section_is_added_renamed_filled_emptied_and_removed() {
        let mut doc = merged();
        let first = section_ids(&doc)[0].clone();
        let heads = doc.get_heads();
        let id = add_section(&mut doc, "  Remittances  ", Some(&first), &me()).unwrap();
        assert_eq!(section_ids(&doc)[0], id, "before the first section");
        let changes = doc.get_changes(&heads);
        assert_eq!(changes.len(), 1);
        assert!(changes[0].message().unwrap().contains("add-section"));
        let j = document_json(&doc, None);
        assert_eq!(arr(&j, "sections")[0]["title"], "Remittances");
        schema::validate_summary(&doc).unwrap();

        rename_section(&mut doc, &id, "Remittances and financial inclusion", &me()).unwrap();
        assert_eq!(
            arr(&document_json(&doc, None), "sections")[0]["title"],
            "Remittances and financial inclusion"
        );

        // The first item of group 1 moves into the thematic section, with its provenance.
        let item = item_ids(&doc, "group-1")[0].clone();
        let before = super::find_item(&document_json(&doc, None), &item)
            .unwrap()
            .1
            .clone();
        move_item(&mut doc, &item, &id, None, &me()).unwrap();
        assert_eq!(item_ids(&doc, &id), std::slice::from_ref(&item));
        assert_eq!(item_ids(&doc, "group-1").len(), 1);
        let after = super::find_item(&document_json(&doc, None), &item)
            .unwrap()
            .1
            .clone();
        assert_eq!(
            after, before,
            "text, sources and merged text travel with it"
        );
        schema::validate_summary(&doc).unwrap();

        // Not removable while it holds the item; removable once it is moved back.
        assert_eq!(
            remove_section(&mut doc, &id, &me()),
            Err(SectionError::NotEmpty)
        );
        move_item(&mut doc, &item, "group-1", Some(0), &me()).unwrap();
        assert_eq!(item_ids(&doc, "group-1")[0], item);
        remove_section(&mut doc, &id, &me()).unwrap();
        assert!(!section_ids(&doc).contains(&id));
        schema::validate_summary(&doc).unwrap();
    }

    #[test]
    fn bad_requests_are_refused_without_a_change() {
        let mut doc = merged();
        let heads = doc.get_heads();
        assert_eq!(
            add_section(&mut doc, "  ", None, &me()),
            Err(SectionError::BlankTitle)
        );
        assert_eq!(
            add_section(&mut doc, "x", Some("nope"), &me()),
            Err(SectionError::NoSection)
        );
        assert_eq!(
            move_item(&mut doc, "nope", "group-1", None, &me()),
            Err(SectionError::NoItem)
        );
        let item = item_ids(&doc, "group-1")[0].clone();
        assert_eq!(
            move_item(&mut doc, &item, "nope", None, &me()),
            Err(SectionError::NoSection)
        );
        // Moving an item to where it is, or renaming to the same title, changes nothing.
        move_item(&mut doc, &item, "group-1", Some(0), &me()).unwrap();
        let title = s(&arr(&document_json(&doc, None), "sections")[0], "title");
        rename_section(&mut doc, "group-1", &title, &me()).unwrap();
        assert_eq!(doc.get_heads(), heads);
    }

    #[test]
    fn the_merge_brings_back_a_removed_group_section_only_for_new_items() {
        let mut doc = merged();
        let theme = add_section(&mut doc, "Financial inclusion", None, &me()).unwrap();
        for item in item_ids(&doc, "group-1") {
            move_item(&mut doc, &item, &theme, None, &me()).unwrap();
        }
        remove_section(&mut doc, "group-1", &me()).unwrap();
        // The same submission again: nothing new, no section, no change.
        let heads = doc.get_heads();
        let bullet = |id: &str, text: &str| SourceBullet {
            id: id.into(),
            text: text.into(),
            tags: vec![],
        };
        let mut subs = vec![Submitted {
            group: 1,
            dimension: "Human rights".into(),
            version: 1,
            bullets: vec![
                bullet("a", "Lower remittance costs"),
                bullet("b", "Protect the rights of all migrants"),
            ],
        }];
        merge(&mut doc, &subs, &me()).unwrap();
        assert_eq!(doc.get_heads(), heads);
        assert!(!section_ids(&doc).contains(&"group-1".to_owned()));
        // A new bullet: the group's section comes back, at the end, titled with its dimension.
        subs[0].version = 2;
        subs[0]
            .bullets
            .push(bullet("c", "Count migrants in censuses"));
        merge(&mut doc, &subs, &me()).unwrap();
        let j = document_json(&doc, None);
        let last = arr(&j, "sections").last().unwrap();
        assert_eq!(
            (s(last, "id"), s(last, "title")),
            ("group-1".into(), "Human rights".into())
        );
        assert_eq!(arr(last, "items").len(), 1);
        assert_eq!(
            item_ids(&doc, &theme).len(),
            2,
            "the moved items stay where they are"
        );
        schema::validate_summary(&doc).unwrap();
    }
}

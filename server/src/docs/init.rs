//! Builds the documents of a new meeting, and the server's own edits to them.
//!
//! Only the server writes the meeting index, and the server-owned parts of the outcome and
//! summary documents (see `docs/schema.md`). These functions are the one place that knows
//! their layout.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Automerge, AutomergeError, ObjId, ObjType, ReadDoc, ROOT};

use crate::ids::DocId;
use crate::meeting::{Group, MeetingFile};
use crate::store::{GroupState, SubmissionRecord};
use crate::summary::signoff::IndexSummary;
use crate::summary::Author;

pub const INDEX_SCHEMA: &str = "rapporteur.meeting-index";
pub const OUTCOME_SCHEMA: &str = "rapporteur.group-outcome";
pub const SUMMARY_SCHEMA: &str = "rapporteur.chair-summary";
pub const SCHEMA_VERSION: i64 = 1;

fn new_doc() -> AutoCommit {
    AutoCommit::new().with_actor(ActorId::random())
}

fn put_strings<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    items: &[String],
) -> Result<(), AutomergeError> {
    let list = tx.put_object(obj, key, ObjType::List)?;
    for (i, item) in items.iter().enumerate() {
        tx.insert(&list, i, item.as_str())?;
    }
    Ok(())
}

fn put_group_fields<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    group: &Group,
) -> Result<(), AutomergeError> {
    tx.put(obj, "number", group.number as i64)?;
    tx.put(obj, "dimension", group.dimension.as_str())?;
    tx.put(obj, "moderator", group.moderator.as_str())?;
    tx.put(obj, "rapporteur", group.rapporteur.as_str())?;
    put_strings(tx, obj, "questions", &group.questions)
}

/// An action group's empty outcome in the meeting's sections.
pub fn group_outcome(meeting: &MeetingFile, group: &Group) -> Result<Vec<u8>, AutomergeError> {
    let mut doc = new_doc();
    doc.put(ROOT, "schema", OUTCOME_SCHEMA)?;
    doc.put(ROOT, "schemaVersion", SCHEMA_VERSION)?;
    doc.put(ROOT, "meeting", meeting.slug.as_str())?;
    let g = doc.put_object(ROOT, "group", ObjType::Map)?;
    put_group_fields(&mut doc, &g, group)?;
    let sections = doc.put_object(ROOT, "sections", ObjType::List)?;
    for (i, section) in meeting.sections.iter().enumerate() {
        let s = doc.insert_object(&sections, i, ObjType::Map)?;
        doc.put(&s, "id", section.id.as_str())?;
        doc.put(&s, "title", section.title.as_str())?;
        doc.put_object(&s, "bullets", ObjType::List)?;
    }
    Ok(doc.save())
}

/// The chair's summary, empty, with one section per group dimension.
pub fn chair_summary(meeting: &MeetingFile) -> Result<Vec<u8>, AutomergeError> {
    let mut doc = new_doc();
    doc.put(ROOT, "schema", SUMMARY_SCHEMA)?;
    doc.put(ROOT, "schemaVersion", SCHEMA_VERSION)?;
    doc.put(ROOT, "meeting", meeting.slug.as_str())?;
    doc.put(ROOT, "title", "Chair's summary")?;
    doc.put_object(ROOT, "preamble", ObjType::Text)?;
    doc.put(ROOT, "state", "drafting")?;
    let sections = doc.put_object(ROOT, "sections", ObjType::List)?;
    for (i, group) in meeting.groups.iter().enumerate() {
        let s = doc.insert_object(&sections, i, ObjType::Map)?;
        doc.put(&s, "id", format!("group-{}", group.number))?;
        doc.put(&s, "title", group.dimension.as_str())?;
        doc.put_object(&s, "items", ObjType::List)?;
    }
    Ok(doc.save())
}

/// The meeting index: everything a viewer needs to follow the meeting.
pub fn meeting_index(
    meeting: &MeetingFile,
    group_docs: &[(u32, DocId)],
    summary: &DocId,
) -> Result<Vec<u8>, AutomergeError> {
    let mut doc = new_doc();
    doc.put(ROOT, "schema", INDEX_SCHEMA)?;
    doc.put(ROOT, "schemaVersion", SCHEMA_VERSION)?;
    let m = doc.put_object(ROOT, "meeting", ObjType::Map)?;
    for (key, value) in [
        ("slug", &meeting.slug),
        ("title", &meeting.title),
        ("venue", &meeting.venue),
        ("startDate", &meeting.start_date),
        ("endDate", &meeting.end_date),
        ("timezone", &meeting.timezone),
    ] {
        doc.put(&m, key, value.as_str())?;
    }
    let agenda = doc.put_object(ROOT, "agenda", ObjType::List)?;
    for (i, day) in meeting.agenda.iter().enumerate() {
        let d = doc.insert_object(&agenda, i, ObjType::Map)?;
        doc.put(&d, "day", day.day as i64)?;
        doc.put(&d, "date", day.date.as_str())?;
        doc.put(&d, "title", day.title.as_str())?;
        let sessions = doc.put_object(&d, "sessions", ObjType::List)?;
        for (j, s) in day.sessions.iter().enumerate() {
            let o = doc.insert_object(&sessions, j, ObjType::Map)?;
            doc.put(&o, "start", s.start.as_str())?;
            doc.put(&o, "end", s.end.as_str())?;
            doc.put(&o, "title", s.title.as_str())?;
            doc.put(&o, "kind", s.kind.as_str())?;
            if !s.groups.is_empty() {
                let groups = doc.put_object(&o, "groups", ObjType::List)?;
                for (k, g) in s.groups.iter().enumerate() {
                    doc.insert(&groups, k, *g as i64)?;
                }
            }
        }
    }
    let rules = doc.put_object(ROOT, "formatRules", ObjType::Map)?;
    let r = &meeting.format_rules;
    doc.put(&rules, "maxWordsPerBullet", r.max_words_per_bullet as i64)?;
    doc.put(
        &rules,
        "maxBulletsPerSection",
        r.max_bullets_per_section as i64,
    )?;
    doc.put(&rules, "forbidEmpty", r.forbid_empty)?;
    doc.put(&rules, "forbidDuplicates", r.forbid_duplicates)?;
    doc.put(&rules, "singleParagraph", r.single_paragraph)?;
    let sections = doc.put_object(ROOT, "sections", ObjType::List)?;
    for (i, s) in meeting.sections.iter().enumerate() {
        let o = doc.insert_object(&sections, i, ObjType::Map)?;
        doc.put(&o, "id", s.id.as_str())?;
        doc.put(&o, "title", s.title.as_str())?;
    }
    let groups = doc.put_object(ROOT, "groups", ObjType::List)?;
    for (i, group) in meeting.groups.iter().enumerate() {
        let o = doc.insert_object(&groups, i, ObjType::Map)?;
        doc.put(&o, "number", group.number as i64)?;
        doc.put(&o, "dimension", group.dimension.as_str())?;
        let url = group_docs
            .iter()
            .find(|(n, _)| *n == group.number)
            .map(|(_, id)| id.url())
            .unwrap_or_default();
        doc.put(&o, "docUrl", url)?;
        put_slot(&mut doc, &o, group)?;
        doc.put(&o, "state", GroupState::Drafting.as_str())?;
        doc.put_object(&o, "submissions", ObjType::List)?;
    }
    let s = doc.put_object(ROOT, "summary", ObjType::Map)?;
    doc.put(&s, "docUrl", summary.url())?;
    doc.put(&s, "state", "drafting")?;
    doc.put(&s, "revision", 1)?;
    doc.put_object(&s, "approvedBy", ObjType::List)?;
    Ok(doc.save())
}

fn put_slot<T: Transactable>(tx: &mut T, obj: &ObjId, group: &Group) -> Result<(), AutomergeError> {
    let slot = tx.put_object(obj, "slot", ObjType::Map)?;
    tx.put(&slot, "day", group.slot.day as i64)?;
    tx.put(&slot, "date", group.slot.date.as_str())?;
    tx.put(&slot, "start", group.slot.start.as_str())?;
    tx.put(&slot, "end", group.slot.end.as_str())?;
    tx.put(&slot, "room", group.slot.room.as_str())?;
    Ok(())
}

/// The object at `key` of map `obj`, if it is one.
pub fn child(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key) {
        Ok(Some((automerge::Value::Object(_), id))) => Some(id),
        _ => None,
    }
}

/// The index document's entry for group `number`.
fn index_group(doc: &Automerge, number: u32) -> Option<ObjId> {
    let groups = child(doc, &ROOT, "groups")?;
    (0..doc.length(&groups)).find_map(|i| {
        let (_, entry) = doc.get(&groups, i).ok()??;
        let n = doc.get(&entry, "number").ok()??.0.as_i64()?;
        (n == number as i64).then_some(entry)
    })
}

/// Index edit: a group's state changed.
pub fn set_index_group_state(
    doc: &mut Automerge,
    number: u32,
    state: GroupState,
) -> Result<(), AutomergeError> {
    let entry = index_group(doc, number).ok_or(AutomergeError::InvalidObjId(number.to_string()))?;
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(&entry, "state", state.as_str())?;
        Ok(())
    })
    .map_err(|f| f.error)?;
    Ok(())
}

/// Index edit: a new submission (also sets the state to submitted).
pub fn add_index_submission(
    doc: &mut Automerge,
    s: &SubmissionRecord,
) -> Result<(), AutomergeError> {
    let entry =
        index_group(doc, s.group).ok_or(AutomergeError::InvalidObjId(s.group.to_string()))?;
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(&entry, "state", GroupState::Submitted.as_str())?;
        let list = match tx.get(&entry, "submissions")? {
            Some((automerge::Value::Object(_), id)) => id,
            _ => tx.put_object(&entry, "submissions", ObjType::List)?,
        };
        let at = tx.length(&list);
        let o = tx.insert_object(&list, at, ObjType::Map)?;
        tx.put(&o, "version", s.version as i64)?;
        tx.put(&o, "at", s.at)?;
        tx.put(&o, "by", s.by_name.as_str())?;
        tx.put(&o, "byPerson", s.by_person.as_str())?;
        put_strings(tx, &o, "heads", &s.heads)?;
        tx.put(&o, "contentHash", s.content_hash.as_str())?;
        tx.put(&o, "override", s.override_rules)?;
        Ok(())
    })
    .map_err(|f| f.error)?;
    Ok(())
}

/// Index edit: a group's dimension or slot changed.
pub fn set_index_group(doc: &mut Automerge, group: &Group) -> Result<(), AutomergeError> {
    let entry = index_group(doc, group.number)
        .ok_or(AutomergeError::InvalidObjId(group.number.to_string()))?;
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(&entry, "dimension", group.dimension.as_str())?;
        put_slot(tx, &entry, group)
    })
    .map_err(|f| f.error)?;
    Ok(())
}

/// Outcome edit: the server-owned `group` map (dimension, names, questions).
/// Attributed to `author` like every server edit that people see in a document's history.
pub fn set_outcome_group(
    doc: &mut Automerge,
    group: &Group,
    author: &Author,
) -> Result<(), AutomergeError> {
    let g = child(doc, &ROOT, "group").ok_or(AutomergeError::InvalidObjId("group".into()))?;
    doc.transact_with::<_, _, AutomergeError, _>(
        |_| author.commit("edit-group"),
        |tx| put_group_fields(tx, &g, group),
    )
    .map_err(|f| f.error)?;
    Ok(())
}

/// Index edit: where the summary stands (see `summary::signoff::IndexSummary`). Changes nothing
/// when the index already says so.
pub fn set_index_summary(doc: &mut Automerge, state: &IndexSummary) -> Result<(), AutomergeError> {
    let s = child(doc, &ROOT, "summary").ok_or(AutomergeError::InvalidObjId("summary".into()))?;
    let scalar = |key: &str| match doc.get(&s, key) {
        Ok(Some((automerge::Value::Scalar(v), _))) => Some(v.into_owned()),
        _ => None,
    };
    let names: Option<Vec<String>> = child(doc, &s, "approvedBy").map(|list| {
        (0..doc.length(&list))
            .filter_map(|i| match doc.get(&list, i) {
                Ok(Some((automerge::Value::Scalar(v), _))) => v.as_str().map(str::to_owned),
                _ => None,
            })
            .collect()
    });
    let same = scalar("state").is_some_and(|v| v.as_str() == Some(state.state.as_str()))
        && scalar("revision").is_some_and(|v| v.as_i64() == Some(state.revision))
        && names.as_ref() == Some(&state.approved_by);
    if same {
        return Ok(());
    }
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(&s, "state", state.state.as_str())?;
        tx.put(&s, "revision", state.revision)?;
        put_strings(tx, &s, "approvedBy", &state.approved_by)
    })
    .map_err(|f| f.error)?;
    Ok(())
}

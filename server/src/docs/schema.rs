//! The document schemas of `docs/schema.md`, enforced on every incoming change.
//!
//! A batch of changes from a peer is applied to a copy of the document; then
//! 1. every operation's target path is checked against what the writer's role may touch —
//!    including operations that lose a conflict and so would never show in a diff; and
//! 2. the whole resulting document is validated: required keys, types, sizes, unique bullet
//!    ids, immutable bullet fields. A batch that only types into bullets' texts (the bulk of
//!    a meeting's changes) leaves everything else as the last check left it, so only the texts
//!    it typed into are measured: validating the whole document costs milliseconds per
//!    keystroke on a day's document.
//!
//! Only a batch that passes both is stored and synced on. Before either, every new change's
//! Automerge actor must be the writer's own (see [`ActorOwners`]). The checks are pure functions
//! of the documents before and after, so they are tested here without any I/O.

use std::collections::{HashMap, HashSet};

use automerge::hydrate::{Map, Value as Hydrated};
use automerge::legacy::{Key, ObjectId, OpType};
use automerge::sync::ChunkList;
use automerge::{ActorId, Automerge, Change, ChangeHash, Prop, ReadDoc, ScalarValue, ROOT};

use super::init::{OUTCOME_SCHEMA, SUMMARY_SCHEMA};
use crate::store::DocKind;

pub const MAX_BULLET_CHARS: usize = 5_000;
pub const MAX_BULLETS_PER_SECTION: usize = 200;
pub const MAX_ITEMS_PER_SECTION: usize = 1_000;
pub const MAX_SUMMARY_SECTIONS: usize = 100;
pub const MAX_ITEM_CHARS: usize = 20_000;
pub const MAX_PREAMBLE_CHARS: usize = 50_000;
const MAX_DELEGATIONS: usize = 100;
const MAX_DELEGATION_CHARS: usize = 120;
const MAX_TAGS: usize = 30;
const MAX_TAG_CHARS: usize = 64;
const MAX_ID_CHARS: usize = 100;
const MAX_TITLE_CHARS: usize = 500;
const STATUSES: [&str; 3] = ["proposed", "agreed", "bracketed"];

/// Why a change was refused. The message goes to the peer: it names no internals.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(msg: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(msg.into()))
}

/// One step of a path from the root: a map key or a list position.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index,
}

/// What the writer's operations may touch in a document of `kind`. Only writers get here:
/// read-only peers are refused before their changes are looked at.
fn may_touch(kind: DocKind, path: &[Seg], new_object: bool) -> bool {
    use Seg::{Index, Key};
    let key = |s: &Seg, k: &str| matches!(s, Key(x) if x == k);
    match kind {
        DocKind::Index => false,
        DocKind::Group(_) => {
            let in_bullet = |s: &Seg, b: &Seg| key(s, "sections") && key(b, "bullets");
            // Fields whose value editors change; identity fields only while the bullet (or,
            // for text values, the text object) is created in this very batch.
            let editable = |f: &str| matches!(f, "text" | "proposedBy" | "tags" | "status");
            let identity = |f: &str| matches!(f, "id" | "createdBy" | "createdAt");
            match path {
                // Inserting, deleting or moving bullets.
                [s, Index, b, Index] => in_bullet(s, b),
                // Setting a bullet's field.
                [s, Index, b, Index, Key(f)] if in_bullet(s, b) => {
                    editable(f) || (new_object && identity(f))
                }
                // Inside a field's text or list (strings may be Automerge text).
                [s, Index, b, Index, Key(f), Index] if in_bullet(s, b) => {
                    editable(f) || (new_object && identity(f))
                }
                // Inside the text of one delegation or tag.
                [s, Index, b, Index, Key(f), Index, Index] if in_bullet(s, b) => {
                    matches!(f.as_str(), "proposedBy" | "tags")
                }
                _ => false,
            }
        }
        DocKind::Summary => match path {
            [Key(k)] => k == "title" || k == "preamble",
            // Adding, removing (see `check_operations`) and moving sections.
            [Key(k), Index] => k == "title" || k == "preamble" || k == "sections",
            // A section's id and its list of items are set when it is created, never replaced
            // (replacing the list would drop its items); its title may change.
            [s, Index, Key(f)] if key(s, "sections") => f == "title" || new_object,
            // An item's id likewise.
            [s, Index, i, Index, Key(f)] if key(s, "sections") && key(i, "items") => {
                f != "id" || new_object
            }
            [Key(k), Index, ..] => k == "sections",
            _ => false,
        },
    }
}

/// Where an object is: its path from the root, and whether it is still in the document (not
/// inside something deleted, nor a value that lost a conflict).
#[derive(Clone)]
struct Place {
    /// The object itself; `None` for the root.
    obj: Option<automerge::ObjId>,
    path: Vec<Seg>,
    visible: bool,
}

impl Place {
    /// Whether this is a bullet's `text` in a group outcome.
    fn is_bullet_text(&self) -> bool {
        matches!(self.path.as_slice(),
            [Seg::Key(s), Seg::Index, Seg::Key(b), Seg::Index, Seg::Key(t)]
                if s == "sections" && b == "bullets" && t == "text")
    }
}

/// What a batch's operations touched, as [`check_operations`] found them.
#[derive(Debug, Default)]
pub struct Touched {
    /// The bullets' texts it typed characters into that are in the document after it.
    texts: Vec<automerge::ObjId>,
    /// Whether it did anything but type characters into bullets' texts that existed before it:
    /// made an object, set or deleted a map key or a list element, wrote a value other than a
    /// string into a text.
    beyond_texts: bool,
}

/// Whether `op`, on an object at `place` that the batch did not create, types into a bullet's
/// text: inserts or overwrites a character, or deletes one. Such an operation changes nothing
/// of the document but that text's characters.
fn types_into_bullet_text(op: &automerge::legacy::Op, place: &Place, new_object: bool) -> bool {
    !new_object
        && place.is_bullet_text()
        && matches!(op.key, Key::Seq(_))
        && matches!(op.action, OpType::Put(ScalarValue::Str(_)) | OpType::Delete)
}

fn place_of(doc: &Automerge, obj: &ObjectId) -> Result<Place, Refusal> {
    let exid = match obj {
        ObjectId::Root => {
            return Ok(Place {
                obj: None,
                path: Vec::new(),
                visible: true,
            })
        }
        ObjectId::Id(id) => doc
            .import_obj(&id.to_string())
            .map_err(|_| Refusal("a change targets an unknown object".into()))?,
    };
    let parents = doc
        .parents(&exid)
        .map_err(|_| Refusal("a change targets an unknown object".into()))?;
    let mut visible = true;
    let mut path: Vec<Seg> = parents
        .map(|p| {
            visible &= p.visible;
            match p.prop {
                Prop::Map(k) => Seg::Key(k),
                Prop::Seq(_) => Seg::Index,
            }
        })
        .collect();
    path.reverse();
    Ok(Place {
        obj: Some(exid),
        path,
        visible,
    })
}

/// The number of items of a summary section given by its list element (the section map
/// inserted there), visible or not.
fn section_items(doc: &Automerge, element: &automerge::legacy::ElementId) -> usize {
    let automerge::legacy::ElementId::Id(id) = element else {
        return 0;
    };
    let Ok(section) = doc.import_obj(&id.to_string()) else {
        return 0;
    };
    match doc.get(&section, "items") {
        Ok(Some((automerge::Value::Object(_), items))) => doc.length(&items),
        _ => 0,
    }
}

/// Checks every operation of `changes` (already applied to `after`) against the role's rights,
/// and says what they touched.
pub fn check_operations(
    kind: DocKind,
    after: &Automerge,
    changes: &[Change],
) -> Result<Touched, Refusal> {
    // Objects created in this batch, as "counter@actor" op ids.
    let mut created: HashSet<String> = HashSet::new();
    let decoded: Vec<_> = changes.iter().map(|c| c.decode()).collect();
    for change in &decoded {
        for (i, op) in change.operations.iter().enumerate() {
            if matches!(op.action, OpType::Make(_)) {
                let counter = change.start_op.get() + i as u64;
                created.insert(format!("{counter}@{}", change.actor_id));
            }
        }
    }
    // Finding an object's path walks the document; a change typing into one text has
    // thousands of operations on the same object, so look each object up once (without this a
    // single large message kept a document busy for minutes).
    let mut places: HashMap<&ObjectId, Place> = HashMap::new();
    let mut touched = Touched::default();
    let mut texts: HashSet<&ObjectId> = HashSet::new();
    for change in &decoded {
        for op in &change.operations {
            match op.action {
                OpType::Put(_) | OpType::Make(_) | OpType::Delete => {}
                _ => return refuse("this kind of operation is not allowed in this document"),
            }
            let place = match places.get(&op.obj) {
                Some(place) => place.clone(),
                None => {
                    let place = place_of(after, &op.obj)?;
                    places.insert(&op.obj, place.clone());
                    place
                }
            };
            let new_object = match &op.obj {
                ObjectId::Id(id) => created.contains(&id.to_string()),
                ObjectId::Root => false,
            };
            if !types_into_bullet_text(op, &place, new_object) {
                touched.beyond_texts = true;
            } else if place.visible && texts.insert(&op.obj) {
                touched.texts.extend(place.obj);
            }
            let mut path = place.path;
            path.push(match &op.key {
                Key::Map(k) => Seg::Key(k.to_string()),
                Key::Seq(_) => Seg::Index,
            });
            if !may_touch(kind, &path, new_object) {
                return refuse(format!("you may not change {}", describe(&path)));
            }
            if kind == DocKind::Summary {
                check_summary_op(after, op, &path, place.visible)?;
            }
        }
    }
    Ok(touched)
}

/// Sections of the chair's summary go away only empty, and nothing goes into one that has gone.
/// Otherwise items could vanish without anyone deleting them: a co-facilitator removes a
/// section they see empty while another moves an item into it (a move is a delete plus an
/// insert, and the insert would land in the removed section). Whichever of the two changes
/// reaches the server second is refused, and that client reloads the summary as it is.
fn check_summary_op(
    after: &Automerge,
    op: &automerge::legacy::Op,
    path: &[Seg],
    target_visible: bool,
) -> Result<(), Refusal> {
    let in_sections = matches!(path, [Seg::Key(k), Seg::Index] if k == "sections");
    let in_items = matches!(path, [Seg::Key(s), Seg::Index, Seg::Key(i), Seg::Index]
        if s == "sections" && i == "items");
    match (&op.action, &op.key) {
        (OpType::Delete, Key::Seq(element)) if in_sections && section_items(after, element) > 0 => {
            return refuse(
                "a section that holds items cannot be removed: move or delete its items first",
            );
        }
        (OpType::Make(_), _) if in_items && !target_visible => {
            return refuse("that section was removed meanwhile");
        }
        _ => {}
    }
    Ok(())
}

fn describe(path: &[Seg]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.chars().take(40).collect(),
            Seg::Index => "[]".into(),
        })
        .collect();
    format!("`{}`", parts.join("."))
}

// --- whole-document validation --------------------------------------------------------

fn get<'a>(map: &'a Map, key: &str) -> Result<&'a Hydrated, Refusal> {
    map.get(key)
        .ok_or_else(|| Refusal(format!("required key `{key}` is missing")))
}

fn as_map<'a>(v: &'a Hydrated, what: &str) -> Result<&'a Map, Refusal> {
    match v {
        Hydrated::Map(m) => Ok(m),
        _ => refuse(format!("`{what}` must be a map")),
    }
}

fn as_list<'a>(v: &'a Hydrated, what: &str) -> Result<Vec<&'a Hydrated>, Refusal> {
    match v {
        Hydrated::List(l) => Ok(l.iter().map(|lv| &lv.value).collect()),
        _ => refuse(format!("`{what}` must be a list")),
    }
}

/// A string value: a scalar string, or Automerge text (JavaScript clients write strings as text
/// by default).
fn as_str(v: &Hydrated, what: &str, max: usize) -> Result<String, Refusal> {
    let s = match v {
        Hydrated::Scalar(ScalarValue::Str(s)) => s.to_string(),
        Hydrated::Text(t) => String::from(t),
        _ => return refuse(format!("`{what}` must be a string")),
    };
    if s.chars().count() > max {
        return refuse(format!("`{what}` is longer than {max} characters"));
    }
    Ok(s)
}

fn as_text(v: &Hydrated, what: &str, max: usize) -> Result<String, Refusal> {
    match v {
        Hydrated::Text(t) => {
            let s = String::from(t);
            if s.chars().count() > max {
                return refuse(format!("`{what}` is longer than {max} characters"));
            }
            Ok(s)
        }
        _ => refuse(format!("`{what}` must be collaborative text")),
    }
}

fn as_int(v: &Hydrated, what: &str) -> Result<i64, Refusal> {
    match v {
        Hydrated::Scalar(ScalarValue::Int(i)) | Hydrated::Scalar(ScalarValue::Timestamp(i)) => {
            Ok(*i)
        }
        Hydrated::Scalar(ScalarValue::Uint(u)) => {
            i64::try_from(*u).map_err(|_| Refusal(format!("`{what}` is out of range")))
        }
        Hydrated::Scalar(ScalarValue::F64(f)) if f.fract() == 0.0 && f.abs() < 9.007e15 => {
            Ok(*f as i64)
        }
        _ => refuse(format!("`{what}` must be an integer")),
    }
}

fn only_keys(map: &Map, allowed: &[&str], what: &str) -> Result<(), Refusal> {
    for (k, _) in map.iter() {
        if !allowed.contains(&k.as_str()) {
            return refuse(format!(
                "`{what}` has an unknown key `{}`",
                k.chars().take(40).collect::<String>()
            ));
        }
    }
    Ok(())
}

fn string_list(
    v: &Hydrated,
    what: &str,
    max_items: usize,
    max_chars: usize,
) -> Result<(), Refusal> {
    let items = as_list(v, what)?;
    if items.len() > max_items {
        return refuse(format!("`{what}` has more than {max_items} entries"));
    }
    for item in items {
        as_str(item, what, max_chars)?;
    }
    Ok(())
}

/// The immutable identity of a bullet: who created it and when.
pub type BulletIdentity = (String, i64);

/// Bullet id → identity, for a valid outcome document.
pub fn bullet_identities(doc: &Automerge) -> HashMap<String, BulletIdentity> {
    let mut out = HashMap::new();
    let Hydrated::Map(root) = doc.hydrate(None) else {
        return out;
    };
    let Some(Hydrated::List(sections)) = root.get("sections") else {
        return out;
    };
    for s in sections.iter() {
        let Hydrated::Map(s) = &s.value else { continue };
        let Some(Hydrated::List(bullets)) = s.get("bullets") else {
            continue;
        };
        for b in bullets.iter() {
            let Hydrated::Map(b) = &b.value else { continue };
            let id = b.get("id").and_then(|v| as_str(v, "id", usize::MAX).ok());
            let by = b
                .get("createdBy")
                .and_then(|v| as_str(v, "createdBy", usize::MAX).ok());
            let at = b.get("createdAt").and_then(|v| as_int(v, "createdAt").ok());
            if let (Some(id), Some(by), Some(at)) = (id, by, at) {
                out.insert(id, (by, at));
            }
        }
    }
    out
}

/// Validates an outcome document after a writer's changes. `before` holds the identities of
/// the bullets that existed; a bullet with a new id must be created by `writer`.
pub fn validate_outcome(
    after: &Automerge,
    before: &HashMap<String, BulletIdentity>,
    writer: &str,
) -> Result<HashMap<String, BulletIdentity>, Refusal> {
    let root = after.hydrate(None);
    let root = as_map(&root, "document")?;
    if as_str(get(root, "schema")?, "schema", 100)? != OUTCOME_SCHEMA {
        return refuse("this is not an outcome document");
    }
    let mut seen = HashMap::new();
    for section in as_list(get(root, "sections")?, "sections")? {
        let section = as_map(section, "section")?;
        let bullets = as_list(get(section, "bullets")?, "bullets")?;
        if bullets.len() > MAX_BULLETS_PER_SECTION {
            return refuse(format!(
                "a section holds at most {MAX_BULLETS_PER_SECTION} bullets"
            ));
        }
        for bullet in bullets {
            let b = as_map(bullet, "bullet")?;
            only_keys(
                b,
                &[
                    "id",
                    "text",
                    "proposedBy",
                    "tags",
                    "status",
                    "createdBy",
                    "createdAt",
                ],
                "bullet",
            )?;
            let id = as_str(get(b, "id")?, "id", MAX_ID_CHARS)?;
            if id.is_empty() || seen.contains_key(&id) {
                return refuse("bullet ids must be non-empty and unique");
            }
            as_text(get(b, "text")?, "text", MAX_BULLET_CHARS)?;
            string_list(
                get(b, "proposedBy")?,
                "proposedBy",
                MAX_DELEGATIONS,
                MAX_DELEGATION_CHARS,
            )?;
            string_list(get(b, "tags")?, "tags", MAX_TAGS, MAX_TAG_CHARS)?;
            let status = as_str(get(b, "status")?, "status", 20)?;
            if !STATUSES.contains(&status.as_str()) {
                return refuse("`status` must be proposed, agreed or bracketed");
            }
            let created_by = as_str(get(b, "createdBy")?, "createdBy", MAX_ID_CHARS)?;
            let created_at = as_int(get(b, "createdAt")?, "createdAt")?;
            match before.get(&id) {
                Some((by, at)) if *by != created_by || *at != created_at => {
                    return refuse("a bullet's `createdBy` and `createdAt` never change");
                }
                None if created_by != writer => {
                    return refuse("a new bullet's `createdBy` must be your own person id");
                }
                _ => {}
            }
            seen.insert(id, (created_by, created_at));
        }
    }
    Ok(seen)
}

/// The part of [`validate_outcome`] that typing into `texts`, bullets' texts, can change: their
/// length.
fn bullet_texts_fit(after: &Automerge, texts: &[automerge::ObjId]) -> Result<(), Refusal> {
    for text in texts {
        let s = after
            .text(text)
            .map_err(|_| Refusal("`text` must be collaborative text".into()))?;
        if s.chars().count() > MAX_BULLET_CHARS {
            return refuse(format!(
                "`text` is longer than {MAX_BULLET_CHARS} characters"
            ));
        }
    }
    Ok(())
}

/// Validates the chair's summary after a co-facilitator's changes.
pub fn validate_summary(after: &Automerge) -> Result<(), Refusal> {
    let root = after.hydrate(None);
    let root = as_map(&root, "document")?;
    if as_str(get(root, "schema")?, "schema", 100)? != SUMMARY_SCHEMA {
        return refuse("this is not a summary document");
    }
    as_str(get(root, "title")?, "title", MAX_TITLE_CHARS)?;
    as_text(get(root, "preamble")?, "preamble", MAX_PREAMBLE_CHARS)?;
    let sections = as_list(get(root, "sections")?, "sections")?;
    if sections.len() > MAX_SUMMARY_SECTIONS {
        return refuse(format!("at most {MAX_SUMMARY_SECTIONS} sections"));
    }
    let mut seen = HashSet::new();
    let mut section_ids = HashSet::new();
    for section in sections {
        let s = as_map(section, "section")?;
        only_keys(s, &["id", "title", "items"], "section")?;
        let id = as_str(get(s, "id")?, "id", MAX_ID_CHARS)?;
        if id.is_empty() || !section_ids.insert(id) {
            return refuse("section ids must be non-empty and unique");
        }
        as_str(get(s, "title")?, "title", MAX_TITLE_CHARS)?;
        let items = as_list(get(s, "items")?, "items")?;
        if items.len() > MAX_ITEMS_PER_SECTION {
            return refuse(format!(
                "a section holds at most {MAX_ITEMS_PER_SECTION} items"
            ));
        }
        for item in items {
            let i = as_map(item, "item")?;
            only_keys(
                i,
                &[
                    "id",
                    "text",
                    "sources",
                    "mergedText",
                    "stale",
                    "removedAtSource",
                    "consolidatedFrom",
                ],
                "item",
            )?;
            let id = as_str(get(i, "id")?, "id", MAX_ID_CHARS)?;
            if id.is_empty() || !seen.insert(id) {
                return refuse("item ids must be non-empty and unique");
            }
            as_text(get(i, "text")?, "text", MAX_ITEM_CHARS)?;
            if let Some(v) = i.get("mergedText") {
                as_str(v, "mergedText", MAX_ITEM_CHARS)?;
            }
            for source in as_list(get(i, "sources")?, "sources")? {
                let src = as_map(source, "source")?;
                only_keys(
                    src,
                    &["group", "bulletId", "version", "text", "tags"],
                    "source",
                )?;
                source_ref(src)?;
                if let Some(v) = src.get("text") {
                    as_str(v, "text", MAX_BULLET_CHARS)?;
                }
                if let Some(v) = src.get("tags") {
                    string_list(v, "tags", MAX_TAGS, MAX_TAG_CHARS)?;
                }
            }
            if let Some(v) = i.get("stale") {
                for flag in as_list(v, "stale")? {
                    let f = as_map(flag, "stale")?;
                    only_keys(
                        f,
                        &["group", "bulletId", "version", "oldText", "newText"],
                        "stale",
                    )?;
                    source_ref(f)?;
                    as_str(get(f, "oldText")?, "oldText", MAX_BULLET_CHARS)?;
                    as_str(get(f, "newText")?, "newText", MAX_BULLET_CHARS)?;
                }
            }
            if let Some(v) = i.get("removedAtSource") {
                for flag in as_list(v, "removedAtSource")? {
                    let f = as_map(flag, "removedAtSource")?;
                    only_keys(f, &["group", "bulletId", "version"], "removedAtSource")?;
                    source_ref(f)?;
                }
            }
            if let Some(v) = i.get("consolidatedFrom") {
                for entry in as_list(v, "consolidatedFrom")? {
                    let e = as_map(entry, "consolidatedFrom")?;
                    only_keys(e, &["itemId", "text"], "consolidatedFrom")?;
                    as_str(get(e, "itemId")?, "itemId", MAX_ID_CHARS)?;
                    as_str(get(e, "text")?, "text", MAX_ITEM_CHARS)?;
                }
            }
        }
    }
    Ok(())
}

/// The `group`, `bulletId` and `version` of a source reference.
fn source_ref(m: &Map) -> Result<(), Refusal> {
    as_int(get(m, "group")?, "group")?;
    as_str(get(m, "bulletId")?, "bulletId", MAX_ID_CHARS)?;
    as_int(get(m, "version")?, "version")?;
    Ok(())
}

/// Checks that the server-owned root keys survived (they are never writable, but a document
/// must also never lose them).
pub fn root_is_intact(doc: &Automerge) -> bool {
    matches!(doc.get(ROOT, "schema"), Ok(Some(_)))
}

/// Which person each Automerge actor of a document belongs to (person ids), as recorded by the
/// store: the person whose change with that actor the server accepted first.
pub type ActorOwners = HashMap<ActorId, String>;

/// Who sent a message: the authenticated person, and the owners of the document's actors.
pub struct Writer<'a> {
    /// The person id.
    pub person: &'a str,
    pub owners: &'a ActorOwners,
}

/// What passed the check of one message.
#[derive(Debug)]
pub struct Accepted {
    /// The document with the message's new changes.
    pub doc: Automerge,
    /// Actors that write in this document for the first time: the writer's, once recorded
    /// (before the changes are stored).
    pub new_actors: Vec<ActorId>,
}

/// Every new change must be written with one of the writer's own actors: one recorded as theirs,
/// or one that writes in this document for the first time — its changes start at sequence
/// number 1 in this very message — and becomes theirs. Refused: another person's actor (the
/// change would be attributed to them, and would take the sequence numbers their own next change
/// needs), and an actor nobody owns that wrote before (the server's own, whose changes name
/// their author in the commit message, or changes stored before actors were recorded).
pub fn check_actors(changes: &[Change], writer: &Writer<'_>) -> Result<Vec<ActorId>, Refusal> {
    let mut first_seq: HashMap<&ActorId, u64> = HashMap::new();
    for change in changes {
        let seq = first_seq.entry(change.actor_id()).or_insert(u64::MAX);
        *seq = (*seq).min(change.seq());
    }
    let mut new = Vec::new();
    for (actor, seq) in first_seq {
        match writer.owners.get(actor) {
            Some(owner) if owner == writer.person => {}
            Some(_) => {
                return refuse("the change is written with another person's Automerge actor id")
            }
            None if seq == 1 => new.push(actor.clone()),
            None => {
                return refuse(
                    "the change continues the changes of an Automerge actor that is not yours",
                )
            }
        }
    }
    new.sort();
    Ok(new)
}

/// The whole check of one incoming sync message's changes, without I/O: loads the chunks
/// (changes or bundles) into a copy of `base`, checks that the writer wrote them with their own
/// actors, checks every newly applied operation for the writer's role and validates the
/// resulting document. Returns the checked copy, or `None` if the message applied nothing new.
///
/// Changes whose dependencies have not arrived yet are legitimate (the sync protocol may send a
/// change before one it depends on); they stay out of the copy and are checked when they apply.
/// Changes that depend on a refused change never will: they are refused at once. `refused`
/// collects the hashes of refused changes; `identities` caches the bullet identities of `base`
/// and is updated to those of the copy.
pub fn accept(
    kind: DocKind,
    base: &Automerge,
    chunks: &ChunkList,
    writer: &Writer<'_>,
    identities: &mut Option<HashMap<String, BulletIdentity>>,
    refused: &mut HashSet<ChangeHash>,
) -> Result<Option<Accepted>, Refusal> {
    if kind == DocKind::Summary && crate::summary::signoff::is_issued(base) {
        return refuse("the summary is issued; a co-facilitator must start a new revision first");
    }
    // What automerge would expand without bound (billions of declared operations, inflation,
    // bundles) is refused before it reads anything.
    crate::sync::chunks::check_chunks(chunks.iter()).map_err(|why| Refusal(why.into()))?;
    let base_heads = base.get_heads();
    let mut next = base.clone();
    // automerge 0.12 panics on some malformed change bundles instead of returning an error
    // (found by fuzzing; inside the actor, that took the document down for every peer). `next`
    // is a throwaway copy, so a panic here is one more kind of malformed input.
    // Loaded exactly as `receive_sync_message` will load them after the commit (all chunks
    // as one buffer), so that what passed here cannot fail or panic there.
    let joined: Vec<u8> = chunks.iter().flatten().copied().collect();
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        next.load_incremental(&joined).map(|_| ())
    }));
    if !matches!(loaded, Ok(Ok(()))) {
        return refuse("malformed change in sync message");
    }
    if next
        .get_missing_deps(&[])
        .iter()
        .any(|h| refused.contains(h))
    {
        return refuse("the change depends on a change that was refused");
    }
    let changes = next.get_changes(&base_heads);
    if changes.is_empty() {
        return Ok(None);
    }
    let checked = check_actors(&changes, writer).and_then(|new_actors| {
        let touched = check_operations(kind, &next, &changes)?;
        match kind {
            // `base` passed this check (or is the server's own), and the batch changed
            // nothing but the characters of these texts: they are all there is to check.
            DocKind::Group(_) if !touched.beyond_texts => bullet_texts_fit(&next, &touched.texts)?,
            DocKind::Group(_) => {
                let before = identities.get_or_insert_with(|| bullet_identities(base));
                *identities = Some(validate_outcome(&next, before, writer.person)?);
            }
            DocKind::Summary => validate_summary(&next)?,
            DocKind::Index => return refuse("only the server writes the meeting index"),
        }
        Ok(new_actors)
    });
    let new_actors = match checked {
        Ok(new_actors) => new_actors,
        Err(refusal) => {
            if refused.len() > 100_000 {
                refused.clear();
            }
            refused.extend(changes.iter().map(|c| c.hash()));
            return Err(refusal);
        }
    };
    // What still waits on dependencies is queued in the document when the message itself is
    // received after the commit; keep it out of the copy so that it is not queued twice.
    if next.get_missing_deps(&[]).len() > base.get_missing_deps(&[]).len() {
        let mut clean = base.clone();
        clean
            .apply_changes(changes)
            .map_err(|_| Refusal("the change could not be applied".into()))?;
        return Ok(Some(Accepted {
            doc: clean,
            new_actors,
        }));
    }
    Ok(Some(Accepted {
        doc: next,
        new_actors,
    }))
}

#[cfg(test)]
mod tests;

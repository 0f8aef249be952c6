//! Documents in the shape of Rapporteur's schema (`docs/schema.md`): the outcome documents and
//! the index the stock server is given, and the bullet each writer adds and types into.
//!
//! The stock server gets the same shapes so that both servers move the same bytes.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge, ObjId, ObjType, ReadDoc, ScalarValue, ROOT};

const SECTIONS: [(&str, &str); 3] = [
    ("commitments", "Actionable commitments"),
    ("means", "Means of implementation and partnerships"),
    ("follow-up", "Follow-up and review"),
];

/// A group outcome document as the server would create it for group `number`.
pub fn outcome(number: u32) -> anyhow::Result<Automerge> {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "schema", "rapporteur.group-outcome")?;
    doc.put(ROOT, "schemaVersion", 1)?;
    doc.put(ROOT, "meeting", "loadgen")?;
    let group = doc.put_object(ROOT, "group", ObjType::Map)?;
    doc.put(&group, "number", number as i64)?;
    doc.put(&group, "dimension", format!("Dimension {number}"))?;
    doc.put(&group, "moderator", "Moderator")?;
    doc.put(&group, "rapporteur", "Rapporteur")?;
    let questions = doc.put_object(&group, "questions", ObjType::List)?;
    doc.insert(&questions, 0, "What works?")?;
    let sections = doc.put_object(ROOT, "sections", ObjType::List)?;
    for (i, (id, title)) in SECTIONS.iter().enumerate() {
        let s = doc.insert_object(&sections, i, ObjType::Map)?;
        doc.put(&s, "id", *id)?;
        doc.put(&s, "title", *title)?;
        doc.put_object(&s, "bullets", ObjType::List)?;
    }
    Ok(doc.document().clone())
}

/// An index document listing the group documents.
pub fn index(groups: &[String]) -> anyhow::Result<Automerge> {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "schema", "rapporteur.meeting-index")?;
    doc.put(ROOT, "schemaVersion", 1)?;
    let list = doc.put_object(ROOT, "groups", ObjType::List)?;
    for (i, id) in groups.iter().enumerate() {
        let g = doc.insert_object(&list, i, ObjType::Map)?;
        doc.put(&g, "number", (i + 1) as i64)?;
        doc.put(&g, "docUrl", format!("automerge:{id}"))?;
        doc.put(&g, "state", "drafting")?;
    }
    Ok(doc.document().clone())
}

/// Adds a bullet to the first section; returns its text object.
pub fn add_bullet(doc: &mut Automerge, person: &str) -> anyhow::Result<ObjId> {
    let (_, sections) = doc
        .get(ROOT, "sections")?
        .ok_or_else(|| anyhow::anyhow!("document has no sections"))?;
    let (_, first) = doc
        .get(&sections, 0)?
        .ok_or_else(|| anyhow::anyhow!("document has no first section"))?;
    let (_, bullets) = doc
        .get(&first, "bullets")?
        .ok_or_else(|| anyhow::anyhow!("section has no bullets"))?;
    let at = doc.length(&bullets);
    let mut tx = doc.transaction();
    let b = tx.insert_object(&bullets, at, ObjType::Map)?;
    tx.put(&b, "id", uuid::Uuid::new_v4().to_string())?;
    let text = tx.put_object(&b, "text", ObjType::Text)?;
    tx.put_object(&b, "proposedBy", ObjType::List)?;
    tx.put_object(&b, "tags", ObjType::List)?;
    tx.put(&b, "status", "proposed")?;
    tx.put(&b, "createdBy", person)?;
    tx.put(&b, "createdAt", ScalarValue::Int(now_ms()))?;
    tx.commit();
    Ok(text)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A fresh automerge-repo document id: base58check of 16 random bytes.
pub fn new_doc_id() -> String {
    bs58::encode(uuid::Uuid::new_v4().as_bytes())
        .with_check()
        .into_string()
}

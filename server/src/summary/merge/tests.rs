//! Merge and re-merge on a summary built the way the server builds it; every result must
//! still pass the summary schema check.

use automerge::Automerge;

use super::*;
use crate::docs::{init, schema};
use crate::meeting::MeetingFile;
use crate::summary::{find_item, SourceBullet};

fn summary() -> Automerge {
    Automerge::load(&init::chair_summary(&MeetingFile::demo()).unwrap()).unwrap()
}

fn me() -> Author {
    Author {
        person: "p-cofac".into(),
        name: "Co-facilitator, Mexico".into(),
    }
}

fn b(id: &str, text: &str) -> SourceBullet {
    SourceBullet {
        id: id.into(),
        text: text.into(),
        tags: vec![],
    }
}

fn sub(group: u32, version: u32, bullets: Vec<SourceBullet>) -> Submitted {
    Submitted {
        group,
        dimension: format!("Dimension {group}"),
        version,
        bullets,
    }
}

fn items(doc: &Automerge, section: usize) -> Vec<Value> {
    let j = document_json(doc, None);
    arr(&arr(&j, "sections")[section], "items").to_vec()
}

fn check(doc: &Automerge) {
    schema::validate_summary(doc).expect("the merged summary is valid");
}

#[test]
fn merge_adds_each_bullet_once_with_provenance_in_one_attributed_change() {
    let mut doc = summary();
    let heads = doc.get_heads();
    let subs = [sub(
        1,
        1,
        vec![b("a", "Protect rights"), b("b", "End detention")],
    )];
    let report = merge(&mut doc, &subs, &me()).unwrap();
    assert_eq!(report.added, 2);
    let changes = doc.get_changes(&heads);
    assert_eq!(changes.len(), 1);
    assert_eq!(
        Author::from_message(changes[0].message().unwrap()),
        Some(me())
    );
    let it = items(&doc, 0);
    assert_eq!(s(&it[0], "text"), "Protect rights");
    assert_eq!(arr(&it[0], "sources")[0]["bulletId"], "a");
    assert_eq!(arr(&it[0], "sources")[0]["version"], 1);
    check(&doc);
    // Merging again adds nothing and makes no change.
    let heads = doc.get_heads();
    assert_eq!(
        merge(&mut doc, &subs, &me()).unwrap(),
        MergeReport::default()
    );
    assert_eq!(doc.get_heads(), heads);
}

#[test]
fn re_merge_marks_changed_and_removed_sources_and_never_drops_items() {
    let mut doc = summary();
    merge(
        &mut doc,
        &[sub(
            1,
            1,
            vec![
                b("a", "Protect rights"),
                b("b", "End detention"),
                b("c", "Same"),
            ],
        )],
        &me(),
    )
    .unwrap();
    let v2 = [sub(
        1,
        2,
        vec![
            b("a", "Protect the rights of all"),
            b("c", "Same"),
            b("d", "New one"),
        ],
    )];
    let report = merge(&mut doc, &v2, &me()).unwrap();
    assert_eq!(
        report,
        MergeReport {
            added: 1,
            refreshed: 1,
            stale: 1,
            removed_at_source: 1
        }
    );
    let it = items(&doc, 0);
    assert_eq!(it.len(), 4, "nothing dropped");
    assert_eq!(
        s(&it[0], "text"),
        "Protect rights",
        "text untouched until decided"
    );
    assert_eq!(it[0]["stale"][0]["oldText"], "Protect rights");
    assert_eq!(it[0]["stale"][0]["newText"], "Protect the rights of all");
    assert_eq!(it[1]["removedAtSource"][0]["bulletId"], "b");
    assert_eq!(it[2]["sources"][0]["version"], 2);
    check(&doc);
    // Idempotent.
    let heads = doc.get_heads();
    merge(&mut doc, &v2, &me()).unwrap();
    assert_eq!(doc.get_heads(), heads);

    // The unedited stale item updates in one action.
    assert_eq!(update_unedited(&mut doc, &me()).unwrap(), 1);
    let it = items(&doc, 0);
    assert_eq!(s(&it[0], "text"), "Protect the rights of all");
    assert!(it[0].get("stale").is_none());
    assert_eq!(it[0]["sources"][0]["version"], 2);
    // The removed one waits for a decision.
    let id = s(&it[1], "id");
    resolve(&mut doc, &id, Decision::KeepMine, &me()).unwrap();
    assert!(items(&doc, 0)[1].get("removedAtSource").is_none());
    check(&doc);
}

#[test]
fn an_edited_stale_item_waits_for_a_decision() {
    let mut doc = summary();
    merge(&mut doc, &[sub(2, 1, vec![b("a", "Old text")])], &me()).unwrap();
    // A co-facilitator edits the item.
    let id = s(&items(&doc, 1)[0], "id");
    let (pos, _) = find_item(&document_json(&doc, None), &id).unwrap();
    doc.transact::<_, _, AutomergeError>(|tx| {
        let o = crate::summary::item_obj(tx, pos)?;
        let t = child(tx, &o, "text").unwrap();
        tx.splice_text(&t, 0, 0, "Edited: ")?;
        Ok(())
    })
    .unwrap();
    merge(&mut doc, &[sub(2, 2, vec![b("a", "New text")])], &me()).unwrap();
    assert_eq!(
        update_unedited(&mut doc, &me()).unwrap(),
        0,
        "edited: not automatic"
    );
    assert_eq!(s(&items(&doc, 1)[0], "text"), "Edited: Old text");
    resolve(&mut doc, &id, Decision::KeepMine, &me()).unwrap();
    let it = &items(&doc, 1)[0];
    assert_eq!(s(it, "text"), "Edited: Old text");
    assert_eq!(it["sources"][0]["version"], 2);
    assert_eq!(it["sources"][0]["text"], "New text");
    assert_eq!(
        resolve(&mut doc, &id, Decision::TakeSource, &me()),
        Err(ResolveError::NothingToResolve)
    );
    check(&doc);
}

#[test]
fn a_cluster_becomes_one_item_citing_all_sources() {
    let mut doc = summary();
    merge(
        &mut doc,
        &[
            sub(
                1,
                1,
                vec![
                    b("a", "Reduce remittance costs below 3 per cent"),
                    b("x", "Other"),
                ],
            ),
            sub(
                4,
                1,
                vec![b(
                    "b",
                    "Lower the transaction costs of remittances below 3 per cent",
                )],
            ),
        ],
        &me(),
    )
    .unwrap();
    let found = crate::summary::cluster::clusters(&document_json(&doc, None));
    assert_eq!(found.len(), 1, "{found:?}");
    let id = consolidate(&mut doc, &found[0], Some("Reduce remittance costs"), &me()).unwrap();
    let j = document_json(&doc, None);
    let (_, item) = find_item(&j, &id).unwrap();
    assert_eq!(arr(item, "sources").len(), 2);
    assert_eq!(arr(item, "consolidatedFrom").len(), 2);
    assert_eq!(items(&doc, 0).len(), 2, "x stays; a became the new item");
    assert_eq!(items(&doc, 3).len(), 0);
    check(&doc);
    // Nothing merged twice afterwards.
    let heads = doc.get_heads();
    merge(
        &mut doc,
        &[sub(
            4,
            1,
            vec![b(
                "b",
                "Lower the transaction costs of remittances below 3 per cent",
            )],
        )],
        &me(),
    )
    .unwrap();
    assert_eq!(doc.get_heads(), heads);
    assert!(crate::summary::cluster::clusters(&j).is_empty());
}

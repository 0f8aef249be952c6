//! The chair's summary beyond the merge: thematic sections over REST and over sync (added,
//! renamed, filled from the groups' sections, removed once empty; co-facilitators only), and
//! the meeting index following sign-off at every step — drafting, approved by some, back to
//! drafting when an edit voids the approvals, issued, and drafting again in a new revision.

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ReadDoc, ROOT};
use rapporteur::docs::json::document_json;
use rapporteur::meeting::Role;
use serde_json::{json, Value};

use crate::forged::add_bullet;
use crate::summary::{api, count_items, p, splice_preamble};
use crate::support::*;

fn section_ids(summary: &Value) -> Vec<String> {
    summary["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn items_of(summary: &Value, section: &str) -> Vec<String> {
    summary["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == section)
        .unwrap_or_else(|| panic!("no section {section}"))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn section_at(doc: &Automerge, id: &str) -> usize {
    section_ids(&document_json(doc, None))
        .iter()
        .position(|s| s == id)
        .unwrap()
}

/// Adds a section over sync, as the web app does.
fn add_section(doc: &mut Automerge, id: &str, title: &str) {
    doc.transact::<_, _, AutomergeError>(|tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        let at = tx.length(&sections);
        let s = tx.insert_object(&sections, at, ObjType::Map)?;
        tx.put(&s, "id", id)?;
        tx.put(&s, "title", title)?;
        tx.put_object(&s, "items", ObjType::List)?;
        Ok(())
    })
    .unwrap();
}

/// Moves the first item of section `from` to the end of section `to` over sync: a delete and
/// an insert of a copy, as the web app does.
fn move_first_item(doc: &mut Automerge, from: &str, to: &str) {
    let json = document_json(doc, None);
    let (fi, ti) = (section_at(doc, from), section_at(doc, to));
    let item = json["sections"][fi]["items"][0].clone();
    doc.transact::<_, _, AutomergeError>(|tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        let source = tx.get(&sections, fi)?.unwrap().1;
        let items = tx.get(&source, "items")?.unwrap().1;
        tx.delete(&items, 0)?;
        let target = tx.get(&sections, ti)?.unwrap().1;
        let dest = tx.get(&target, "items")?.unwrap().1;
        let at = tx.length(&dest);
        let i = tx.insert_object(&dest, at, ObjType::Map)?;
        tx.put(&i, "id", item["id"].as_str().unwrap())?;
        let t = tx.put_object(&i, "text", ObjType::Text)?;
        tx.splice_text(&t, 0, 0, item["text"].as_str().unwrap())?;
        tx.put(&i, "mergedText", item["mergedText"].as_str().unwrap())?;
        let sources = tx.put_object(&i, "sources", ObjType::List)?;
        for (k, src) in item["sources"].as_array().unwrap().iter().enumerate() {
            let m = tx.insert_object(&sources, k, ObjType::Map)?;
            tx.put(&m, "group", src["group"].as_i64().unwrap())?;
            tx.put(&m, "bulletId", src["bulletId"].as_str().unwrap())?;
            tx.put(&m, "version", src["version"].as_i64().unwrap())?;
            tx.put(&m, "text", src["text"].as_str().unwrap())?;
        }
        Ok(())
    })
    .unwrap();
}

fn remove_section(doc: &mut Automerge, id: &str) {
    let at = section_at(doc, id);
    doc.transact::<_, _, AutomergeError>(|tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        tx.delete(&sections, at)
    })
    .unwrap();
}

/// A meeting with two co-facilitators (the bootstrap one revoked) and group 1's two bullets
/// merged into the summary.
struct Meeting {
    server: TestServer,
    cof_a: String,
    cof_b: String,
    rap: String,
    delegate: String,
    summary_doc: String,
    index_doc: String,
}

async fn merged_meeting() -> Meeting {
    let server = TestServer::start().await;
    server.revoke_existing_invites().await;
    let cof_a = server.invite(Role::CoFacilitator, None).await;
    let cof_b = server.invite(Role::CoFacilitator, None).await;
    let rap = server.invite(Role::Rapporteur, Some(1)).await;
    let delegate = server.invite(Role::Delegate, None).await;
    let meeting = server.state.store.meeting(SLUG).await.unwrap().unwrap();
    let me = server.person_id(&rap).await;
    let mut peer = Peer::join(&server.ws_url(&rap)).await;
    let mut g1 = Replica::fetch(&mut peer, &server.group_doc(1).await).await;
    add_bullet(&mut g1.doc, "a", "Lower remittance costs", &me, "agreed");
    add_bullet(
        &mut g1.doc,
        "b",
        "Count migrants in censuses",
        &me,
        "agreed",
    );
    g1.sync_acked(&mut peer).await;
    let (st, _) = api(
        server.addr,
        "POST",
        &p("/groups/1/submit"),
        &rap,
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = api(server.addr, "POST", &p("/summary/merge"), &cof_a, None).await;
    assert_eq!(st, 200);
    Meeting {
        cof_a,
        cof_b,
        rap,
        delegate,
        summary_doc: meeting.summary_doc.as_str().to_owned(),
        index_doc: meeting.index_doc.as_str().to_owned(),
        server,
    }
}

async fn summary_json(m: &Meeting) -> Value {
    api(m.server.addr, "GET", &p("/summary"), &m.delegate, None)
        .await
        .1["document"]
        .clone()
}

#[tokio::test]
async fn thematic_sections_over_rest() {
    let m = merged_meeting().await;
    let addr = m.server.addr;
    let sections = p("/summary/sections");

    // Only co-facilitators; a title is required.
    let (st, _) = api(addr, "POST", &sections, &m.rap, Some(json!({"title": "x"}))).await;
    assert_eq!(st, 403);
    let (st, _) = api(
        addr,
        "POST",
        &sections,
        &m.cof_a,
        Some(json!({"title": " "})),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = api(
        addr,
        "POST",
        &sections,
        &m.cof_a,
        Some(json!({"title": "x", "before": "no-such-section"})),
    )
    .await;
    assert_eq!(st, 404);

    // Added before the first section, renamed.
    let (st, made) = api(
        addr,
        "POST",
        &sections,
        &m.cof_a,
        Some(json!({"title": "Remittances", "before": "group-1"})),
    )
    .await;
    assert_eq!(st, 201, "{made}");
    let theme = made["id"].as_str().unwrap().to_owned();
    assert_eq!(section_ids(&summary_json(&m).await)[0], theme);
    let (st, renamed) = api(
        addr,
        "PATCH",
        &p(&format!("/summary/sections/{theme}")),
        &m.cof_b,
        Some(json!({"title": "Remittances and financial inclusion"})),
    )
    .await;
    assert_eq!(st, 200, "{renamed}");
    assert_eq!(
        summary_json(&m).await["sections"][0]["title"],
        "Remittances and financial inclusion"
    );

    // An item moves in with its provenance; the section then cannot be removed.
    let before = summary_json(&m).await;
    let item = items_of(&before, "group-1")[0].clone();
    let moved = p(&format!("/summary/items/{item}/move"));
    let (st, _) = api(
        addr,
        "POST",
        &moved,
        &m.rap,
        Some(json!({"section": theme})),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = api(
        addr,
        "POST",
        &moved,
        &m.cof_a,
        Some(json!({"section": "nope"})),
    )
    .await;
    assert_eq!(st, 404);
    let (st, body) = api(
        addr,
        "POST",
        &moved,
        &m.cof_a,
        Some(json!({"section": theme})),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let after = summary_json(&m).await;
    assert_eq!(items_of(&after, &theme), std::slice::from_ref(&item));
    assert_eq!(items_of(&after, "group-1").len(), 1);
    assert_eq!(
        after["sections"][0]["items"][0]["sources"][0]["bulletId"],
        "a"
    );
    assert_eq!(count_items(&after), 2);
    let remove = p(&format!("/summary/sections/{theme}"));
    let (st, body) = api(addr, "DELETE", &remove, &m.cof_b, None).await;
    assert_eq!(st, 409, "{body}");

    // Back to where it was, at the top; then the empty section goes.
    let (st, _) = api(
        addr,
        "POST",
        &moved,
        &m.cof_b,
        Some(json!({"section": "group-1", "index": 0})),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(items_of(&summary_json(&m).await, "group-1")[0], item);
    let (st, _) = api(addr, "DELETE", &remove, &m.cof_b, None).await;
    assert_eq!(st, 204);
    assert!(!section_ids(&summary_json(&m).await).contains(&theme));
    let (st, _) = api(addr, "DELETE", &remove, &m.cof_b, None).await;
    assert_eq!(st, 404);

    // Each of these was one change, attributed to the co-facilitator who asked.
    let (_, log) = api(addr, "GET", &p("/summary/history"), &m.delegate, None).await;
    let actions: Vec<String> = log["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["message"].as_str())
        .filter_map(|msg| serde_json::from_str::<Value>(msg).ok())
        .map(|msg| msg["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "merge",
            "add-section",
            "rename-section",
            "move-item",
            "move-item",
            "remove-section"
        ]
    );
    m.server.stop().await;
}

#[tokio::test]
async fn thematic_sections_over_sync() {
    let m = merged_meeting().await;
    let mut pa = Peer::join(&m.server.ws_url(&m.cof_a)).await;
    let mut a = Replica::fetch(&mut pa, &m.summary_doc).await;
    a.sync_until(&mut pa, |r| count_items(&document_json(&r.doc, None)) == 2)
        .await;
    let mut pd = Peer::join(&m.server.ws_url(&m.delegate)).await;
    let mut watcher = Replica::fetch(&mut pd, &m.summary_doc).await;

    // A co-facilitator adds a section and moves both of group 1's items into it, then removes
    // the group's emptied section; a delegate sees it all live.
    add_section(&mut a.doc, "theme-data", "Data");
    move_first_item(&mut a.doc, "group-1", "theme-data");
    move_first_item(&mut a.doc, "group-1", "theme-data");
    remove_section(&mut a.doc, "group-1");
    a.sync_acked(&mut pa).await;
    watcher
        .sync_until(&mut pd, |r| {
            let j = document_json(&r.doc, None);
            !section_ids(&j).contains(&"group-1".to_owned())
                && section_ids(&j).contains(&"theme-data".to_owned())
                && items_of(&j, "theme-data").len() == 2
        })
        .await;

    // A section that holds items cannot be removed, nor can a section id repeat.
    remove_section(&mut a.doc, "theme-data");
    a.push_unacked(&mut pa).await;
    assert!(pa.expect_error().await.contains("holds items"));
    let mut pb = Peer::join(&m.server.ws_url(&m.cof_b)).await;
    let mut b = Replica::fetch(&mut pb, &m.summary_doc).await;
    add_section(&mut b.doc, "theme-data", "Data again");
    b.push_unacked(&mut pb).await;
    assert!(pb.expect_error().await.contains("unique"));

    // A rapporteur only reads the summary.
    let mut pr = Peer::join(&m.server.ws_url(&m.rap)).await;
    let mut r = Replica::fetch(&mut pr, &m.summary_doc).await;
    add_section(&mut r.doc, "theme-mine", "Mine");
    r.push_unacked(&mut pr).await;
    assert!(pr.expect_error().await.contains("only read"));

    // The stored summary is the accepted one.
    let s = summary_json(&m).await;
    assert_eq!(
        section_ids(&s)
            .iter()
            .filter(|id| *id == "theme-data")
            .count(),
        1
    );
    assert_eq!(items_of(&s, "theme-data").len(), 2);
    assert_eq!(count_items(&s), 2);
    m.server.stop().await;
}

/// The index's `summary` entry as JSON.
fn index_summary(r: &Replica) -> Value {
    document_json(&r.doc, None)["summary"].clone()
}

#[tokio::test]
async fn the_index_follows_sign_off_at_every_step() {
    let m = merged_meeting().await;
    let addr = m.server.addr;
    let mut pd = Peer::join(&m.server.ws_url(&m.delegate)).await;
    let mut index = Replica::fetch(&mut pd, &m.index_doc).await;
    let state = |r: &Replica| {
        index_summary(r)["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let meeting_state =
        || async { api(addr, "GET", &p(""), &m.delegate, None).await.1["summaryState"].clone() };
    assert_eq!(state(&index), "drafting");
    assert_eq!(index_summary(&index)["revision"], 1);

    // One co-facilitator approves: approved, waiting for the other.
    let (_, signoff) = api(addr, "POST", &p("/summary/approve"), &m.cof_a, None).await;
    assert_eq!(signoff["waitingFor"].as_array().unwrap().len(), 1);
    index.sync_until(&mut pd, |r| state(r) == "approved").await;
    assert_eq!(
        index_summary(&index)["approvedBy"],
        json!(["co-facilitator 0"])
    );
    assert_eq!(meeting_state().await, "approved");

    // The other edits the text over sync: the approval no longer holds.
    let mut pb = Peer::join(&m.server.ws_url(&m.cof_b)).await;
    let mut b = Replica::fetch(&mut pb, &m.summary_doc).await;
    splice_preamble(&mut b.doc, "The co-facilitators thank the host.");
    b.sync_acked(&mut pb).await;
    index.sync_until(&mut pd, |r| state(r) == "drafting").await;
    assert_eq!(index_summary(&index)["approvedBy"], json!([]));
    assert_eq!(meeting_state().await, "drafting");

    // Undoing the edit restores the approved text, and with it the approval.
    b.doc
        .transact::<_, _, AutomergeError>(|tx| {
            let t = tx.get(ROOT, "preamble")?.unwrap().1;
            let len = tx.text(&t)?.chars().count();
            tx.splice_text(&t, 0, len as isize, "")
        })
        .unwrap();
    b.sync_acked(&mut pb).await;
    index.sync_until(&mut pd, |r| state(r) == "approved").await;
    splice_preamble(&mut b.doc, "The co-facilitators thank the host.");
    b.sync_acked(&mut pb).await;
    index.sync_until(&mut pd, |r| state(r) == "drafting").await;

    // Both approve the same text: issued.
    let (_, signoff) = api(addr, "POST", &p("/summary/approve"), &m.cof_b, None).await;
    assert_eq!(signoff["state"], "drafting");
    index.sync_until(&mut pd, |r| state(r) == "approved").await;
    let (_, signoff) = api(addr, "POST", &p("/summary/approve"), &m.cof_a, None).await;
    assert_eq!(signoff["state"], "issued");
    index.sync_until(&mut pd, |r| state(r) == "issued").await;
    assert_eq!(
        index_summary(&index)["approvedBy"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(meeting_state().await, "issued");

    // A new revision: drafting again, revision 2.
    let (st, _) = api(addr, "POST", &p("/summary/revisions"), &m.cof_b, None).await;
    assert_eq!(st, 200);
    index
        .sync_until(&mut pd, |r| {
            state(r) == "drafting" && index_summary(r)["revision"] == 2
        })
        .await;
    assert_eq!(index_summary(&index)["approvedBy"], json!([]));
    m.server.stop().await;
}

/// Revoking the last co-facilitator the sign-off waits for issues the summary, as that
/// co-facilitator's approval would have; revoking anyone else changes nothing.
#[tokio::test]
async fn revoking_the_last_co_facilitator_waited_for_issues_the_summary() {
    let m = merged_meeting().await;
    let addr = m.server.addr;
    let summary = |m: &Meeting| {
        let addr = m.server.addr;
        let delegate = m.delegate.clone();
        async move { api(addr, "GET", &p("/summary"), &delegate, None).await.1["document"].clone() }
    };
    let (_, signoff) = api(addr, "POST", &p("/summary/approve"), &m.cof_a, None).await;
    assert_eq!(signoff["state"], "drafting");
    assert_eq!(signoff["waitingFor"].as_array().unwrap().len(), 1);

    // Revoking a rapporteur does not touch the sign-off.
    let rap = m.server.person_id(&m.rap).await;
    let (st, _) = api(
        addr,
        "DELETE",
        &format!("/api/invites/{rap}"),
        &m.cof_a,
        None,
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(summary(&m).await["state"], "drafting");

    // Revoking the co-facilitator still to approve: issued, by the one who revoked.
    let b = m.server.person_id(&m.cof_b).await;
    let (st, _) = api(addr, "DELETE", &format!("/api/invites/{b}"), &m.cof_a, None).await;
    assert_eq!(st, 204);
    let doc = summary(&m).await;
    assert_eq!(doc["state"], "issued");
    let revisions = doc["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0]["revision"], 1);
    let (_, shown) = api(addr, "GET", &p("/summary"), &m.cof_a, None).await;
    assert_eq!(shown["signoff"]["state"], "issued");
    assert_eq!(shown["signoff"]["waitingFor"], json!([]));
    m.server.stop().await;
}

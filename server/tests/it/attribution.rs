//! Who wrote what, over the real protocol: diffs and change logs name the people behind every
//! change — editors typing over sync as well as server edits — with their role; an Automerge
//! actor id stays its first writer's (another person's change with it is refused, before and
//! after a restart); and a commit message naming someone else does not pass a client's change
//! off as theirs.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutomergeError, ReadDoc};
use rapporteur::meeting::Role;
use serde_json::{json, Value};

use crate::forged::add_bullet;
use crate::summary::{api, count_items, delete_bullet, edit_item_text, p, set_bullet_text};
use crate::support::*;

/// The `by` of the diff entry for element `id` in `list` (`added`, `removed` or `changed`).
fn by<'a>(diff: &'a Value, list: &str, id: &str) -> &'a Value {
    let entry = diff["diff"][list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}: {diff}"));
    &entry["by"]
}

#[tokio::test]
async fn diffs_and_history_name_the_people_who_wrote_each_change() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let rap = server.invite(Role::Rapporteur, Some(1)).await;
    let moderator = server.invite(Role::Moderator, Some(1)).await;
    let cofac = server.invite(Role::CoFacilitator, None).await;
    let delegate = server.invite(Role::Delegate, None).await;
    let (rap_id, mod_id, cofac_id) = (
        server.person_id(&rap).await,
        server.person_id(&moderator).await,
        server.person_id(&cofac).await,
    );
    let g1 = server.group_doc(1).await;

    // The rapporteur drafts over sync; the group reports back (v1).
    let mut pr = Peer::join(&server.ws_url(&rap)).await;
    let mut r = Replica::fetch(&mut pr, &g1).await;
    add_bullet(
        &mut r.doc,
        "a",
        "Guarantee access to justice",
        &rap_id,
        "agreed",
    );
    add_bullet(&mut r.doc, "b", "End child detention", &rap_id, "agreed");
    r.sync_acked(&mut pr).await;
    let (st, _) = api(addr, "POST", &p("/groups/1/submit"), &rap, Some(json!({}))).await;
    assert_eq!(st, 200);

    // Then a co-facilitator edits a bullet they did not create, the moderator adds one and the
    // rapporteur deletes one, each from their own client.
    let mut pc = Peer::join(&server.ws_url(&cofac)).await;
    let mut c = Replica::fetch(&mut pc, &g1).await;
    set_bullet_text(&mut c.doc, "a", "Guarantee access to justice and legal aid");
    c.sync_acked(&mut pc).await;
    let mut pm = Peer::join(&server.ws_url(&moderator)).await;
    let mut m = Replica::fetch(&mut pm, &g1).await;
    add_bullet(
        &mut m.doc,
        "c",
        "Count migrants in censuses",
        &mod_id,
        "proposed",
    );
    m.sync_acked(&mut pm).await;
    delete_bullet(&mut r.doc, "b");
    r.sync_acked(&mut pr).await;

    let (st, diff) = api(addr, "GET", &p("/groups/1/diff?from=v1"), &delegate, None).await;
    assert_eq!(st, 200, "{diff}");
    assert_eq!(by(&diff, "changed", "a"), &json!([cofac_id]));
    assert_eq!(by(&diff, "added", "c"), &json!([mod_id]));
    assert_eq!(by(&diff, "removed", "b"), &json!([rap_id]));
    let mut authors: Vec<&str> = diff["diff"]["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    authors.sort_unstable();
    let mut want = vec![rap_id.as_str(), mod_id.as_str(), cofac_id.as_str()];
    want.sort_unstable();
    assert_eq!(authors, want, "no actor ids, only people");
    // Names and roles of everyone mentioned.
    assert_eq!(diff["people"][&cofac_id]["role"], "co-facilitator");
    assert_eq!(diff["people"][&rap_id]["role"], "rapporteur");
    assert_eq!(diff["people"][&rap_id]["group"], 1);
    assert_eq!(diff["people"][&mod_id]["role"], "moderator");
    assert_eq!(diff["names"][&mod_id], diff["people"][&mod_id]["name"]);

    // The change log names a person for every change since the document was made.
    let (_, log) = api(addr, "GET", &p("/groups/1/history"), &delegate, None).await;
    let changes = log["changes"].as_array().unwrap();
    assert!(changes.len() > 4);
    for change in &changes[1..] {
        let who = change["by"].as_str().unwrap();
        assert!(log["people"].get(who).is_some(), "{change}");
    }

    // The moderator writes with the rapporteur's actor id: refused, so the rapporteur is not
    // made to say it, and the rapporteur's own next change (same sequence number) goes through.
    let mut pf = Peer::join(&server.ws_url(&moderator)).await;
    let mut forged = Replica::fetch(&mut pf, &g1).await;
    forged.doc.set_actor(r.doc.get_actor().clone());
    add_bullet(
        &mut forged.doc,
        "f",
        "Words put in the rapporteur's mouth",
        &mod_id,
        "proposed",
    );
    forged.push_unacked(&mut pf).await;
    let err = pf.expect_error().await;
    assert!(err.contains(&g1) && err.contains("another person"), "{err}");
    r.sync_until(&mut pr, |r| {
        rapporteur::docs::json::document_json(&r.doc, None)["sections"][0]["bullets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == "c")
    })
    .await;
    add_bullet(
        &mut r.doc,
        "d",
        "Share data regionally",
        &rap_id,
        "proposed",
    );
    r.sync_acked(&mut pr).await;

    // A client's change whose commit message names another person is still its writer's.
    let lie = json!({"person": rap_id, "name": "rapporteur 1", "action": "merge"}).to_string();
    let mut pc2 = Peer::join(&server.ws_url(&cofac)).await;
    let mut c2 = Replica::fetch(&mut pc2, &g1).await;
    let at = rapporteur::docs::json::document_json(&c2.doc, None)["sections"][0]["bullets"]
        .as_array()
        .unwrap()
        .iter()
        .position(|b| b["id"] == "d")
        .unwrap();
    let heads = c2.doc.get_heads();
    c2.doc
        .transact_with::<_, _, AutomergeError, _>(
            |_| CommitOptions::default().with_message(lie.clone()),
            |tx| {
                let sections = tx.get(automerge::ROOT, "sections")?.unwrap().1;
                let section = tx.get(&sections, 0)?.unwrap().1;
                let bullets = tx.get(&section, "bullets")?.unwrap().1;
                let b = tx.get(&bullets, at)?.unwrap().1;
                tx.put(&b, "status", "agreed")
            },
        )
        .unwrap();
    c2.sync_acked(&mut pc2).await;
    let lied = c2
        .doc
        .get_changes(&heads)
        .last()
        .unwrap()
        .hash()
        .to_string();
    let (_, log) = api(addr, "GET", &p("/groups/1/history"), &delegate, None).await;
    let entry = log["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["hash"] == lied)
        .unwrap();
    assert_eq!(entry["by"], cofac_id, "{entry}");

    // The record survives a restart: same answer, and the actor is still the rapporteur's.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir).await;
    let addr = server.addr;
    let (_, again) = api(addr, "GET", &p("/groups/1/diff?from=v1"), &delegate, None).await;
    assert_eq!(by(&again, "changed", "a"), &json!([cofac_id]));
    assert_eq!(by(&again, "removed", "b"), &json!([rap_id]));
    let mut pf = Peer::join(&server.ws_url(&moderator)).await;
    let mut forged = Replica::fetch(&mut pf, &g1).await;
    forged.doc.set_actor(r.doc.get_actor().clone());
    add_bullet(&mut forged.doc, "g", "Again", &mod_id, "proposed");
    forged.push_unacked(&mut pf).await;
    assert!(pf.expect_error().await.contains("another person"));
    server.stop().await;
}

#[tokio::test]
async fn the_summary_diff_names_a_co_facilitator_who_only_typed() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let rap = server.invite(Role::Rapporteur, Some(2)).await;
    let cofac = server.invite(Role::CoFacilitator, None).await;
    let other = server.invite(Role::CoFacilitator, None).await;
    let rap_id = server.person_id(&rap).await;
    let (cofac_id, other_id) = (
        server.person_id(&cofac).await,
        server.person_id(&other).await,
    );
    let g2 = server.group_doc(2).await;
    let summary_doc = server
        .state
        .store
        .meeting(SLUG)
        .await
        .unwrap()
        .unwrap()
        .summary_doc
        .as_str()
        .to_owned();
    let mut pr = Peer::join(&server.ws_url(&rap)).await;
    let mut r = Replica::fetch(&mut pr, &g2).await;
    add_bullet(&mut r.doc, "x", "Lower remittance costs", &rap_id, "agreed");
    r.sync_acked(&mut pr).await;
    let (st, _) = api(addr, "POST", &p("/groups/2/submit"), &rap, Some(json!({}))).await;
    assert_eq!(st, 200);

    // One co-facilitator merges (a server edit), the other types into the new item.
    let (st, _) = api(addr, "POST", &p("/summary/merge"), &cofac, None).await;
    assert_eq!(st, 200);
    let (_, log) = api(addr, "GET", &p("/summary/history"), &other, None).await;
    let merged = log["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(merged["by"], cofac_id);
    let mut po = Peer::join(&server.ws_url(&other)).await;
    let mut o = Replica::fetch(&mut po, &summary_doc).await;
    o.sync_until(&mut po, |o| {
        count_items(&rapporteur::docs::json::document_json(&o.doc, None)) == 1
    })
    .await;
    let item = rapporteur::docs::json::document_json(&o.doc, None)["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["items"].as_array().unwrap().clone())
        .next()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    edit_item_text(&mut o.doc, &item, "Welcome: ");
    o.sync_acked(&mut po).await;

    let path = p(&format!(
        "/summary/diff?from={}",
        merged["hash"].as_str().unwrap()
    ));
    let (st, diff) = api(addr, "GET", &path, &rap, None).await;
    assert_eq!(st, 200, "{diff}");
    assert_eq!(by(&diff, "changed", &item), &json!([other_id]));
    assert_eq!(diff["people"][&other_id]["role"], "co-facilitator");
    server.stop().await;
}

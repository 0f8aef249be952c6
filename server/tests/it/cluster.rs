//! Several nodes on one PostgreSQL database, in this process: what one node accepts reaches the
//! others through the database, and nothing reaches a node's copy unchecked that way.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ReadDoc, ROOT};
use rapporteur::meeting::Role;

use crate::forged::{add_bullet, bullet_texts};
use crate::support::*;

fn dimension(doc: &automerge::Automerge) -> String {
    let json = rapporteur::docs::json::document_json(doc, None);
    json["group"]["dimension"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_change_waiting_on_one_node_is_not_applied_by_another_nodes_dependency() {
    let url = rapporteur::store::testing::fresh_postgres_database().await;
    let options = || Options {
        database_url: Some(url.clone()),
        ..Options::default()
    };
    let one = TestServer::start_with(tempfile::tempdir().unwrap(), options()).await;
    let two = TestServer::start_with(tempfile::tempdir().unwrap(), options()).await;
    let doc = one.group_doc(1).await;
    let token = one.invite(Role::Rapporteur, Some(1)).await;
    let me = one.person_id(&token).await;
    let witness_token = one.invite(Role::Rapporteur, Some(1)).await;
    let witness_id = one.person_id(&witness_token).await;
    let mut witness_peer = Peer::join(&one.ws_url(&witness_token)).await;
    let mut witness = Replica::fetch(&mut witness_peer, &doc).await;
    let original = dimension(&witness.doc);

    // An editor prepares a valid change and, on top of it, one the schema refuses.
    let mut on_one = Peer::join(&one.ws_url(&token)).await;
    let mut replica = Replica::fetch(&mut on_one, &doc).await;
    let base = replica.doc.get_heads();
    add_bullet(
        &mut replica.doc,
        "b-valid",
        "A valid bullet",
        &me,
        "proposed",
    );
    let valid = replica.doc.get_heads();
    replica
        .doc
        .transact::<_, _, AutomergeError>(|tx| {
            let group = tx.get(ROOT, "group")?.unwrap().1;
            tx.put(&group, "dimension", "Hijacked dimension")?;
            Ok(())
        })
        .unwrap();
    let changes = replica.doc.get_changes(&base);
    let (first, second) = (&changes[0], &changes[1]);

    // The refused one goes to node one alone: it waits there for its dependency.
    on_one
        .send_sync(
            &doc,
            "sync",
            carrying(replica.doc.get_heads(), vec![second.raw_bytes().to_vec()]),
        )
        .await;
    // The valid one goes to node two, which checks, stores and announces it.
    let mut on_two = Peer::join(&two.ws_url(&token)).await;
    let mut other = Replica::fetch(&mut on_two, &doc).await;
    other.doc.apply_changes([first.clone()]).unwrap();
    other.sync_acked(&mut on_two).await;
    assert_eq!(other.doc.get_heads(), valid);

    // Node one catches up with the valid change; the waiting one must not come with it.
    witness
        .sync_until(&mut witness_peer, |r| bullet_texts(&r.doc).len() == 1)
        .await;
    assert_eq!(bullet_texts(&witness.doc), ["A valid bullet"]);
    assert_eq!(dimension(&witness.doc), original);
    assert!(!witness.doc.get_heads().contains(&second.hash()));

    // What node one acknowledges afterwards is stored whole: a new node loads all of it.
    add_bullet(
        &mut witness.doc,
        "b-after",
        "Written after",
        &witness_id,
        "proposed",
    );
    witness.sync_acked(&mut witness_peer).await;
    one.stop().await;
    two.stop().await;
    let three = TestServer::start_with(tempfile::tempdir().unwrap(), options()).await;
    let mut peer = Peer::join(&three.ws_url(&witness_token)).await;
    let fresh = Replica::fetch(&mut peer, &doc).await;
    assert_eq!(
        bullet_texts(&fresh.doc),
        ["A valid bullet", "Written after"]
    );
    assert_eq!(dimension(&fresh.doc), original);
    three.stop().await;
}

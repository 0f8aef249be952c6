//! A document nobody has open: while automerge loads it, a peer that holds nothing of it, or
//! holds it as stored, is answered from the stored chunks, and the exchange goes on from there
//! as usual.

use std::sync::atomic::Ordering;

use automerge::sync;
use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};
use rapporteur::ids::DocId;
use rapporteur::meeting::Role;

use crate::forged::{add_bullet, bullet_texts};
use crate::support::*;

/// Stores `changes` changes of people typing bullets into `doc` (a new bullet every two
/// hundred), as the server keeps a busy group's work: a snapshot, then the last hundred
/// changes as one chunk each. Returns the last bullet's text.
async fn store_history(server: &TestServer, doc: &str, changes: usize) -> String {
    let id = DocId::parse(doc).unwrap();
    let chunks = server.state.store.load_chunks(&id).await.unwrap();
    let mut history = rapporteur::docs::load_doc(&chunks).unwrap();
    let mut rows = Vec::with_capacity(changes);
    for i in 0..changes {
        let before = history.get_heads();
        if i % 200 == 0 {
            add_bullet(&mut history, &format!("b-{i}"), "", "history", "proposed");
        } else {
            let mut tx = history.transaction();
            let sections = tx.get(ROOT, "sections").unwrap().unwrap().1;
            let section = tx.get(&sections, 0).unwrap().unwrap().1;
            let bullets = tx.get(&section, "bullets").unwrap().unwrap().1;
            let last = tx.length(&bullets) - 1;
            let bullet = tx.get(&bullets, last).unwrap().unwrap().1;
            let text = tx.get(&bullet, "text").unwrap().unwrap().1;
            let len = tx.length(&text);
            tx.splice_text(&text, len, 0, ["mig", "ra", "tion "][i % 3])
                .unwrap();
            tx.commit();
        }
        rows.push((id.clone(), history.save_after(&before)));
    }
    let upto = chunks.last().unwrap().seq;
    let mut snapshot = rapporteur::docs::load_doc(&chunks).unwrap();
    let cut = rows.len() - 100;
    let joined: Vec<u8> = rows[..cut].iter().flat_map(|(_, c)| c.clone()).collect();
    snapshot.load_incremental(&joined).unwrap();
    server
        .state
        .store
        .compact(&id, upto, &snapshot.save())
        .await
        .unwrap();
    server
        .state
        .store
        .append_chunks(&rows[cut..])
        .await
        .unwrap();
    bullet_texts(&history).pop().unwrap()
}

#[tokio::test]
async fn a_new_peer_is_answered_from_storage_while_the_document_loads() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let typed = store_history(&server, &doc, 10_000).await;
    assert_eq!(
        server
            .state
            .metrics
            .documents_loaded
            .load(Ordering::Relaxed),
        0
    );

    // A delegate's device that holds nothing of it: answered before the document is loaded,
    // with all of it.
    let delegate = server.invite(Role::Delegate, None).await;
    let mut v = Peer::join(&server.ws_url(&delegate)).await;
    let mut viewer = Replica::fetch(&mut v, &doc).await;
    assert_eq!(
        server
            .state
            .metrics
            .answered_before_load
            .load(Ordering::Relaxed),
        1
    );
    assert_eq!(bullet_texts(&viewer.doc).pop().unwrap(), typed);
    viewer
        .sync_until(&mut v, |r| {
            r.acknowledged() && r.server_heads == r.doc.get_heads()
        })
        .await;

    // A rapporteur's device, also new.
    let rap = server.invite(Role::Rapporteur, Some(1)).await;
    let mut w = Peer::join(&server.ws_url(&rap)).await;
    let mut writer = Replica::fetch(&mut w, &doc).await;

    // The exchange goes on: the rapporteur's edit reaches the delegate.
    let me = server.person_id(&rap).await;
    add_bullet(
        &mut writer.doc,
        "b-new",
        "Strengthen migration data",
        &me,
        "proposed",
    );
    writer.sync_acked(&mut w).await;
    viewer
        .sync_until(&mut v, |r| {
            bullet_texts(&r.doc).pop().as_deref() == Some("Strengthen migration data")
        })
        .await;
    assert_eq!(viewer.doc.get_heads(), writer.doc.get_heads());

    // A device that holds the document is answered from the loaded document.
    let answered = server
        .state
        .metrics
        .answered_before_load
        .load(Ordering::Relaxed);
    let mut again = Peer::join(&server.ws_url(&delegate)).await;
    let mut copy = Replica::new(&doc);
    copy.doc = viewer.doc.fork();
    copy.sync_until(&mut again, |r| r.server_heads == r.doc.get_heads())
        .await;
    assert_eq!(
        server
            .state
            .metrics
            .answered_before_load
            .load(Ordering::Relaxed),
        answered
    );
    server.stop().await;
}

/// Devices that followed a document come back to it after a restart, holding it as the server
/// stored it: one that kept its sync state with the server (as automerge-repo keeps it), then
/// one that did not; then one that missed an edit while it was away. Each is answered before
/// the document is loaded, and gets what it lacks.
#[tokio::test]
async fn a_returning_device_is_answered_from_storage_after_a_restart() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    store_history(&server, &doc, 10_000).await;
    let delegate = server.invite(Role::Delegate, None).await;
    let rap = server.invite(Role::Rapporteur, Some(1)).await;
    let mut v = Peer::join(&server.ws_url(&delegate)).await;
    let mut device = Replica::fetch(&mut v, &doc).await;
    device
        .sync_until(&mut v, |r| {
            r.acknowledged() && r.server_heads == r.doc.get_heads()
        })
        .await;
    drop(v);
    let mut dir = server.stop().await;

    for (kept, text) in [(true, "Strengthen migration data"), (false, "by 2030")] {
        let server = TestServer::start_in(dir).await;
        device.state = if kept {
            sync::State::decode(&device.state.encode()).unwrap()
        } else {
            sync::State::new()
        };
        assert_eq!(device.state.shared_heads.is_empty(), !kept);
        device.server_heads.clear();
        let heads = device.doc.get_heads();
        let mut v = Peer::join(&server.ws_url(&delegate)).await;
        device
            .sync_until(&mut v, |r| r.server_heads == r.doc.get_heads())
            .await;
        assert_eq!(
            server
                .state
                .metrics
                .answered_before_load
                .load(Ordering::Relaxed),
            1,
            "answered before the load (kept state: {kept})"
        );
        assert_eq!(device.doc.get_heads(), heads);

        // A rapporteur's edit reaches it.
        let mut w = Peer::join(&server.ws_url(&rap)).await;
        let mut writer = Replica::fetch(&mut w, &doc).await;
        let me = server.person_id(&rap).await;
        add_bullet(&mut writer.doc, &format!("b-{kept}"), text, &me, "proposed");
        writer.sync_acked(&mut w).await;
        device
            .sync_until(&mut v, |r| {
                bullet_texts(&r.doc).pop().as_deref() == Some(text)
            })
            .await;
        assert_eq!(device.doc.get_heads(), writer.doc.get_heads());
        drop((v, w));
        dir = server.stop().await;
    }

    // The device is away while the rapporteur goes on; after a restart it comes back behind,
    // and is sent what it missed before the document is loaded.
    let server = TestServer::start_in(dir).await;
    let mut w = Peer::join(&server.ws_url(&rap)).await;
    let mut writer = Replica::fetch(&mut w, &doc).await;
    let me = server.person_id(&rap).await;
    add_bullet(
        &mut writer.doc,
        "b-away",
        "while it was away",
        &me,
        "proposed",
    );
    writer.sync_acked(&mut w).await;
    drop(w);
    let dir = server.stop().await;
    let server = TestServer::start_in(dir).await;
    device.state = sync::State::decode(&device.state.encode()).unwrap();
    device.server_heads.clear();
    let mut v = Peer::join(&server.ws_url(&delegate)).await;
    device
        .sync_until(&mut v, |r| r.doc.get_heads() == writer.doc.get_heads())
        .await;
    assert_eq!(
        server
            .state
            .metrics
            .answered_before_load
            .load(Ordering::Relaxed),
        1,
        "answered before the load"
    );
    assert_eq!(
        bullet_texts(&device.doc).pop().as_deref(),
        Some("while it was away")
    );
    drop(v);
    server.stop().await;
}

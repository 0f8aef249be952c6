//! Fan-out to a peer that has not answered yet: its next changes wait for its answer and then
//! go out together in one message; a peer that never answers still gets them, a little later.

use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use ciborium::Value;
use rapporteur::meeting::Role;

use crate::forged::add_bullet;
use crate::summary::set_bullet_text;
use crate::support::*;

/// The data of the next sync message for `doc`, skipping anything else (presence and the like).
async fn next_sync(peer: &mut Peer, doc: &str, wait: Duration) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = peer.try_next(left).await?.expect("connection closed");
        if field_text(&m, "type") == Some("sync") && field_text(&m, "documentId") == Some(doc) {
            let Some(Value::Bytes(data)) = field(&m, "data") else {
                panic!("sync message without data: {m:?}")
            };
            return Some(data.clone());
        }
    }
}

/// Applies a message from the server without answering it.
fn take(replica: &mut Replica, data: &[u8]) -> usize {
    let msg = sync::Message::decode(data).unwrap();
    let chunks = msg.changes.len();
    replica.server_heads = msg.heads.clone();
    replica
        .doc
        .receive_sync_message(&mut replica.state, msg)
        .unwrap();
    chunks
}

/// Syncs until neither side has anything to say.
async fn settle(replica: &mut Replica, peer: &mut Peer) {
    replica.push(peer).await;
    while let Some(data) = next_sync(peer, &replica.doc_id, Duration::from_millis(300)).await {
        take(replica, &data);
        replica.push(peer).await;
    }
}

/// A writer and a delegate following group 1's outcome, both in step.
async fn writer_and_viewer(server: &TestServer) -> (Peer, Replica, Peer, Replica) {
    let doc = server.group_doc(1).await;
    let rap = server.invite(Role::Rapporteur, Some(1)).await;
    let delegate = server.invite(Role::Delegate, None).await;
    let mut w = Peer::join(&server.ws_url(&rap)).await;
    let mut writer = Replica::fetch(&mut w, &doc).await;
    let me = server.person_id(&rap).await;
    add_bullet(&mut writer.doc, "b-held", "Capacity", &me, "proposed");
    writer.sync_acked(&mut w).await;
    let mut v = Peer::join(&server.ws_url(&delegate)).await;
    let mut viewer = Replica::fetch(&mut v, &doc).await;
    settle(&mut viewer, &mut v).await;
    assert_eq!(viewer.doc.get_heads(), writer.doc.get_heads());
    (w, writer, v, viewer)
}

/// The writer types and waits until the server has stored it.
async fn type_and_store(writer: &mut Replica, w: &mut Peer, text: &str) {
    set_bullet_text(&mut writer.doc, "b-held", text);
    writer.sync_acked(w).await;
}

/// The writer stores `text`; the viewer takes the message that brings it and does not answer.
/// Returns how many chunks that message carried.
async fn store_unanswered(
    writer: &mut Replica,
    w: &mut Peer,
    viewer: &mut Replica,
    v: &mut Peer,
    text: &str,
) -> usize {
    type_and_store(writer, w, text).await;
    let doc = viewer.doc_id.clone();
    let first = next_sync(v, &doc, WAIT).await.expect("the first change");
    take(viewer, &first)
}

/// The viewer holds exactly the writer's document, whose bullet reads `text`.
fn assert_caught_up(viewer: &Replica, writer: &Replica, text: &str) {
    assert_eq!(viewer.doc.get_heads(), writer.doc.get_heads());
    assert_eq!(crate::forged::bullet_texts(&viewer.doc).join("|"), text);
}

#[tokio::test]
async fn changes_for_a_viewer_that_has_not_answered_wait_and_go_out_together() {
    let server = TestServer::start().await;
    let (mut w, mut writer, mut v, mut viewer) = writer_and_viewer(&server).await;
    let doc = viewer.doc_id.clone();

    let chunks = store_unanswered(
        &mut writer,
        &mut w,
        &mut viewer,
        &mut v,
        "Capacity building",
    )
    .await;
    assert!(chunks > 0);
    // Not answered yet: the next two changes are held.
    type_and_store(&mut writer, &mut w, "Capacity building and finance").await;
    type_and_store(&mut writer, &mut w, "Capacity building, finance and data").await;
    assert!(
        next_sync(&mut v, &doc, Duration::from_millis(300))
            .await
            .is_none(),
        "changes went to a viewer that had not answered the previous ones"
    );
    // The answer brings both, in one message.
    viewer.push(&mut v).await;
    let both = next_sync(&mut v, &doc, WAIT)
        .await
        .expect("the held changes");
    take(&mut viewer, &both);
    assert_caught_up(&viewer, &writer, "Capacity building, finance and data");
    server.stop().await;
}

#[tokio::test]
async fn a_viewer_that_never_answers_still_gets_the_next_changes() {
    let server = TestServer::start().await;
    let (mut w, mut writer, mut v, mut viewer) = writer_and_viewer(&server).await;
    let doc = viewer.doc_id.clone();

    store_unanswered(
        &mut writer,
        &mut w,
        &mut viewer,
        &mut v,
        "Technology transfer",
    )
    .await;
    // A client that already had those changes (from another tab, say) has nothing to
    // answer. The next change is held for a while, then sent anyway.
    type_and_store(&mut writer, &mut w, "Technology transfer on agreed terms").await;
    let next = next_sync(&mut v, &doc, WAIT)
        .await
        .expect("the held change, in time");
    take(&mut viewer, &next);
    assert_caught_up(&viewer, &writer, "Technology transfer on agreed terms");
    server.stop().await;
}

/// A viewer answers every message that brings it changes. Messages the server sends because
/// the document changed give the viewer's connection a token back, so a viewer following a
/// document that changes faster than the message limit is not taken for a flood.
#[tokio::test]
async fn a_viewer_answering_changes_faster_than_the_message_limit_stays_connected() {
    let (rate, burst) = (5.0, 10.0);
    let server = TestServer::start_with_message_limit(rate, burst).await;
    let (_w, _writer, mut v, mut viewer) = writer_and_viewer(&server).await;
    let doc = viewer.doc_id.clone();
    let started = tokio::time::Instant::now();

    // The viewer answers each message as it comes, until the document is quiet.
    let following = tokio::spawn(async move {
        let mut brought_changes = 0;
        while let Some(data) = next_sync(&mut v, &doc, Duration::from_secs(1)).await {
            brought_changes += usize::from(take(&mut viewer, &data) > 0);
            viewer.push(&mut v).await;
        }
        (v, viewer, brought_changes)
    });

    // Six writers' connections, one after another, each within its own limit: five changes.
    let rap = server.invite(Role::Rapporteur, Some(1)).await;
    let mut last = None;
    for k in 0..6 {
        let mut w = Peer::join(&server.ws_url(&rap)).await;
        let mut writer = Replica::fetch(&mut w, &server.group_doc(1).await).await;
        for i in 0..5 {
            type_and_store(&mut writer, &mut w, &format!("Capacity {k}.{i}")).await;
        }
        last = Some(writer);
    }
    let typed = started.elapsed();

    let (_v, viewer, brought_changes) = following.await.expect("the viewer was disconnected");
    let last = last.unwrap();
    assert_caught_up(&viewer, &last, "Capacity 5.4");
    // Its answers alone would have gone over the limit while the writers typed.
    let allowed = burst + rate * typed.as_secs_f64();
    assert!(
        brought_changes as f64 > allowed,
        "{brought_changes} answers, {allowed:.0} allowed: the test did not reach the limit"
    );
    let token = server.invite(Role::Delegate, None).await;
    let (status, metrics) =
        crate::summary::http(server.addr, "GET", "/metrics", &token, None).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert_eq!(status, 200);
    assert!(
        metrics.contains("rapporteur_rate_limited_total 0"),
        "{metrics}"
    );
    server.stop().await;
}

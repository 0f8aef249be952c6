//! Document lifecycle: a document nobody follows is unloaded after its idle period and loads
//! again on demand, and its incremental chunks are compacted into a snapshot; nothing is lost
//! on the way.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rapporteur::docs::DocsConfig;
use rapporteur::meeting::Role;

use crate::forged::{add_bullet, bullet_texts};
use crate::support::*;

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn idle_documents_unload_compact_and_reload() {
    let config = DocsConfig {
        idle_unload: Duration::from_millis(300),
        compact_after: 5,
    };
    let options = Options {
        docs: config,
        ..Options::default()
    };
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), options).await;
    let doc = server.group_doc(1).await;
    let doc_id = rapporteur::ids::DocId::parse(&doc).unwrap();
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;

    let mut written = Vec::new();
    {
        let mut peer = Peer::join(&server.ws_url(&token)).await;
        let mut replica = Replica::fetch(&mut peer, &doc).await;
        for i in 0..12 {
            let text = format!("Commitment number {i}");
            add_bullet(&mut replica.doc, &format!("b{i}"), &text, &me, "proposed");
            // One acknowledged chunk per edit, so that compaction has something to do.
            replica.sync_acked(&mut peer).await;
            written.push(text);
        }
    } // the connection closes here

    // Compaction replaced the increments by a snapshot: far fewer chunks than edits.
    let store = server.state.store.clone();
    let id = doc_id.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let chunks = store.load_chunks(&id).await.unwrap().len();
        if chunks < 12 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no compaction: {chunks} chunks"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // With nobody connected, every document unloads.
    let metrics = server.state.metrics.clone();
    wait_until("every document to unload", || {
        metrics.documents_loaded.load(Ordering::Relaxed) == 0
    })
    .await;

    // And loads again, whole, on demand.
    let mut peer = Peer::join(&server.ws_url(&token)).await;
    let replica = Replica::fetch(&mut peer, &doc).await;
    assert_eq!(bullet_texts(&replica.doc), written);
    assert!(
        server
            .state
            .metrics
            .documents_loaded
            .load(Ordering::Relaxed)
            >= 1
    );
    server.stop().await;
}

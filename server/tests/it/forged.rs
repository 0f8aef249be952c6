//! Hostile and broken input over the real protocol: each is refused with a clear error, only
//! the offending connection is affected, and nothing refused leaves a trace in the document.

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ReadDoc, ROOT};
use ciborium::Value;
use rapporteur::meeting::Role;

use crate::support::*;

/// Adds a bullet the way an editor would.
pub fn add_bullet(doc: &mut Automerge, id: &str, text: &str, created_by: &str, status: &str) {
    doc.transact::<_, _, AutomergeError>(|tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        let section = tx.get(&sections, 0)?.unwrap().1;
        let bullets = tx.get(&section, "bullets")?.unwrap().1;
        let at = tx.length(&bullets);
        let b = tx.insert_object(&bullets, at, ObjType::Map)?;
        tx.put(&b, "id", id)?;
        let t = tx.put_object(&b, "text", ObjType::Text)?;
        tx.splice_text(&t, 0, 0, text)?;
        let p = tx.put_object(&b, "proposedBy", ObjType::List)?;
        tx.insert(&p, 0, "Mexico")?;
        tx.put_object(&b, "tags", ObjType::List)?;
        tx.put(&b, "status", status)?;
        tx.put(&b, "createdBy", created_by)?;
        tx.put(&b, "createdAt", 1_512_486_000_000_i64)?;
        Ok(())
    })
    .unwrap();
}

/// The texts of the first section's bullets.
pub fn bullet_texts(doc: &Automerge) -> Vec<String> {
    let json = rapporteur::docs::json::document_json(doc, None);
    json["sections"][0]["bullets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_owned())
        .collect()
}

/// A sync message that carries the replica's newest local change whatever the sync state says.
fn forced_push(replica: &Replica) -> Vec<u8> {
    let change = replica.doc.get_changes(&[]).pop().unwrap();
    carrying(replica.doc.get_heads(), vec![change.raw_bytes().to_vec()])
}

#[tokio::test]
async fn upgrades_without_a_valid_token_are_refused() {
    let server = TestServer::start().await;
    for url in [
        format!("ws://{}/sync", server.addr),
        format!("ws://{}/sync?token=not-a-token", server.addr),
    ] {
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401)
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
    assert_eq!(http_status(server.addr, "/api/me").await, 401);
    server.stop().await;
}

#[tokio::test]
async fn broken_frames_end_only_their_own_connection() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let url = server.ws_url(&token);
    let me = server.person_id(&token).await;

    // A well-behaved editor, connected throughout.
    let mut good = Peer::join(&url).await;
    let mut replica = Replica::fetch(&mut good, &doc).await;

    // A message before `join`.
    let mut early = Peer::connect_raw(&url).await;
    early.send_sync(&doc, "request", vec![0x42]).await;
    assert!(early.expect_error().await.contains("join"));
    early.expect_closed().await;

    // Malformed CBOR.
    let mut garbage = Peer::join(&url).await;
    garbage.send_bytes(vec![0xff, 0x00, 0x13, 0x37]).await;
    assert!(garbage.expect_error().await.contains("malformed"));
    garbage.expect_closed().await;

    // A valid frame whose sync message is not one: an error naming the document, and the
    // connection goes on working.
    let mut sloppy = Peer::join(&url).await;
    sloppy.send_sync(&doc, "sync", vec![1, 2, 3]).await;
    let err = sloppy.expect_error().await;
    assert!(
        err.contains(&doc) && err.contains("malformed sync message"),
        "{err}"
    );
    let fetched = Replica::fetch(&mut sloppy, &doc).await;
    assert!(!fetched.doc.get_heads().is_empty());

    // Unknown and ill-formed document ids: doc-unavailable.
    let unknown = rapporteur::ids::DocId::random();
    for id in [unknown.as_str(), "not-a-document"] {
        sloppy.send_sync(id, "request", vec![0x42]).await;
        match sloppy.next().await {
            Event::Message(m) => {
                assert_eq!(field_text(&m, "type"), Some("doc-unavailable"));
                assert_eq!(field_text(&m, "documentId"), Some(id));
            }
            Event::Closed => panic!("closed"),
        }
    }

    // Claiming another peer's id.
    let mut liar = Peer::join(&url).await;
    let forged = map(vec![
        ("type", text("request")),
        ("senderId", text(&good.id.clone())),
        ("targetId", text("server")),
        ("documentId", text(&doc)),
        ("data", Value::Bytes(vec![0x42])),
    ]);
    liar.send(&forged).await;
    assert!(liar.expect_error().await.contains("senderId"));
    liar.expect_closed().await;

    // An oversized frame.
    let mut big = Peer::join(&url).await;
    big.send_bytes(vec![0u8; 9 << 20]).await;
    big.expect_closed().await;

    // The editor is unaffected: an edit goes through and is acknowledged.
    add_bullet(
        &mut replica.doc,
        "b-1",
        "Ensure access to justice for all migrants",
        &me,
        "proposed",
    );
    replica.sync_acked(&mut good).await;
    assert_eq!(http_status(server.addr, "/healthz").await, 200);
    server.stop().await;
}

#[tokio::test]
async fn refused_changes_are_never_applied_stored_or_relayed() {
    let server = TestServer::start().await;
    let g1 = server.group_doc(1).await;
    let editor_token = server.invite(Role::Rapporteur, Some(1)).await;
    let editor = server.person_id(&editor_token).await;

    // A second rapporteur of group 1 follows the document throughout.
    let witness_token = server.invite(Role::Rapporteur, Some(1)).await;
    let mut witness = Peer::join(&server.ws_url(&witness_token)).await;
    let mut witnessed = Replica::fetch(&mut witness, &g1).await;

    // A delegate (read-only) and a rapporteur of group 2 push changes anyway.
    for (role, group) in [(Role::Delegate, None), (Role::Rapporteur, Some(2))] {
        let token = server.invite(role, group).await;
        let who = server.person_id(&token).await;
        let mut peer = Peer::join(&server.ws_url(&token)).await;
        let mut replica = Replica::fetch(&mut peer, &g1).await;
        add_bullet(
            &mut replica.doc,
            "forged",
            "Forged by a reader",
            &who,
            "agreed",
        );
        peer.send_sync(&g1, "sync", forced_push(&replica)).await;
        let err = peer.expect_error().await;
        assert!(err.contains(&g1) && err.contains("only read"), "{err}");
    }

    // An editor's changes that break the schema or touch server-owned keys.
    type Breaker = Box<dyn Fn(&mut Automerge)>;
    let editor_id = editor.clone();
    let breakers: Vec<(Breaker, &str)> = vec![
        (
            Box::new(|d: &mut Automerge| {
                d.transact::<_, _, AutomergeError>(|tx| {
                    let g = tx.get(ROOT, "group")?.unwrap().1;
                    tx.put(&g, "dimension", "Hijacked dimension")?;
                    Ok(())
                })
                .unwrap();
            }),
            "may not change",
        ),
        (
            Box::new(move |d: &mut Automerge| {
                add_bullet(d, "b-x", "Bad status", &editor_id, "maybe")
            }),
            "status",
        ),
        (
            Box::new(|d: &mut Automerge| {
                add_bullet(
                    d,
                    "b-y",
                    "Someone else's bullet",
                    "another-person",
                    "proposed",
                )
            }),
            "createdBy",
        ),
        (
            Box::new({
                let me = editor.clone();
                move |d: &mut Automerge| add_bullet(d, "b-z", &"x".repeat(6_000), &me, "proposed")
            }),
            "longer than",
        ),
    ];
    for (breaker, expected) in breakers {
        let mut peer = Peer::join(&server.ws_url(&editor_token)).await;
        let mut replica = Replica::fetch(&mut peer, &g1).await;
        breaker(&mut replica.doc);
        replica.push_unacked(&mut peer).await;
        let err = peer.expect_error().await;
        assert!(err.contains(expected), "expected `{expected}` in `{err}`");
    }

    // A valid edit goes through to the witness; nothing refused came with it.
    let mut peer = Peer::join(&server.ws_url(&editor_token)).await;
    let mut replica = Replica::fetch(&mut peer, &g1).await;
    add_bullet(
        &mut replica.doc,
        "b-ok",
        "Share migration data regionally",
        &editor,
        "proposed",
    );
    replica.sync_acked(&mut peer).await;
    witnessed
        .sync_until(&mut witness, |r| bullet_texts(&r.doc).len() == 1)
        .await;
    assert_eq!(
        bullet_texts(&witnessed.doc),
        ["Share migration data regionally"]
    );
    let json = rapporteur::docs::json::document_json(&witnessed.doc, None);
    assert_eq!(json["group"]["dimension"], "Human dimension");

    // And after a restart, the stored document is the same.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir).await;
    let mut peer = Peer::join(&server.ws_url(&witness_token)).await;
    let fresh = Replica::fetch(&mut peer, &g1).await;
    assert_eq!(
        bullet_texts(&fresh.doc),
        ["Share migration data regionally"]
    );
    server.stop().await;
}

//! Hostile clients beyond `forged`: floods, many connections from one address, bad, expired
//! and revoked credentials, forged presence and sender ids, oversized documents. Each is
//! refused and only its own connection suffers.

use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ReadDoc, ROOT};
use ciborium::Value;
use rapporteur::auth::{hash_token, new_token};
use rapporteur::ids::PersonId;
use rapporteur::meeting::Role;
use rapporteur::store::{now_ms, InviteRecord};
use rapporteur::sync::limits::Limits;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::forged::{add_bullet, bullet_texts};
use crate::support::*;

/// The HTTP status of a refused upgrade, or 101.
async fn upgrade_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(other) => panic!("unexpected upgrade failure: {other}"),
    }
}

async fn upgrade_status_with(url: &str, header: (&'static str, &str)) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert(header.0, header.1.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => 101,
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(other) => panic!("unexpected upgrade failure: {other}"),
    }
}

async fn http(addr: std::net::SocketAddr, method: &str, path: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

fn gossip(peer: &Peer) -> Value {
    map(vec![
        ("type", text("remote-heads-changed")),
        ("senderId", text(&peer.id)),
        ("targetId", text("server")),
    ])
}

#[tokio::test]
async fn a_flood_of_messages_closes_only_the_flooding_connection() {
    let server = TestServer::start_with_message_limit(20.0, 50.0).await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let mut good = Peer::join(&server.ws_url(&token)).await;
    let mut replica = Replica::fetch(&mut good, &doc).await;

    let mut flood = Peer::join(&server.ws_url(&token)).await;
    let msg = gossip(&flood);
    // Ten times the burst, sent back to back.
    for _ in 0..500 {
        flood.send(&msg).await;
    }
    let err = flood.expect_error().await;
    assert!(err.contains("too many messages"), "{err}");
    flood.expect_closed().await;

    add_bullet(&mut replica.doc, "b-1", "Still editing", &me, "proposed");
    replica.sync_acked(&mut good).await;
    let metrics = http(server.addr, "GET", "/metrics", &token).await;
    assert!(
        metrics.contains("rapporteur_rate_limited_total 1"),
        "{metrics}"
    );
    server.stop().await;
}

/// Waits for the next `sync` message, or returns the text of an `error` that comes first.
async fn next_sync_or_error(peer: &mut Peer) -> Result<(), String> {
    loop {
        match peer.next().await {
            Event::Message(m) => match field_text(&m, "type") {
                Some("sync") => return Ok(()),
                Some("error") => return Err(field_text(&m, "message").unwrap_or_default().into()),
                _ => {}
            },
            Event::Closed => panic!("closed without an error"),
        }
    }
}

/// Messages that bring a peer changes give its connection a token back, once per state of the
/// document: asking for the whole document again and again earns nothing.
#[tokio::test]
async fn asking_for_the_same_changes_again_earns_no_messages() {
    let server = TestServer::start_with_message_limit(5.0, 10.0).await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Delegate, None).await;
    let mut peer = Peer::join(&server.ws_url(&token)).await;
    let empty = Automerge::new()
        .generate_sync_message(&mut sync::State::new())
        .unwrap()
        .encode();
    // Each asks for everything, as a device that holds nothing, once the whole document came
    // in answer to the last.
    let mut answers = 0;
    let err = loop {
        assert!(answers < 100, "never limited");
        peer.send_sync(&doc, "request", empty.clone()).await;
        match next_sync_or_error(&mut peer).await {
            Ok(()) => answers += 1,
            Err(err) => break err,
        }
    };
    assert!(err.contains("too many messages"), "{err}");
    assert!(answers >= 5, "the document came {answers} times");
    peer.expect_closed().await;
    server.stop().await;
}

#[tokio::test]
async fn one_address_gets_a_bounded_number_of_connections() {
    let options = Options {
        limits: Limits {
            connections_per_ip: 3,
            ..Limits::default()
        },
        ..Options::default()
    };
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), options).await;
    let token = server.invite(Role::Delegate, None).await;
    let url = server.ws_url(&token);
    // Refused upgrades do not keep a place.
    for _ in 0..10 {
        let bad = format!("ws://{}/sync?token=wrong", server.addr);
        assert_eq!(upgrade_status(&bad).await, 401);
    }
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Peer::join(&url).await);
    }
    assert_eq!(upgrade_status(&url).await, 429);

    // A place comes back when a connection ends: the server notices the close, then frees
    // it, so try until it does (bounded).
    let mut gone = open.pop().unwrap();
    gone.ws.close(None).await.unwrap();
    gone.expect_closed().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut admitted = None;
    while admitted.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came back"
        );
        admitted = Peer::try_join(&url).await;
        if admitted.is_none() {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(upgrade_status(&url).await, 429);
    server.stop().await;
}

#[tokio::test]
async fn bad_expired_and_revoked_credentials_get_no_websocket() {
    let server = TestServer::start().await;
    let sync = format!("ws://{}/sync", server.addr);
    assert_eq!(
        upgrade_status_with(&sync, ("authorization", "Bearer nope")).await,
        401
    );
    assert_eq!(
        upgrade_status_with(&sync, ("cookie", "rapporteur_session=forged")).await,
        401
    );
    let long = "x".repeat(5_000);
    assert_eq!(upgrade_status(&format!("{sync}?token={long}")).await, 401);

    // Expired a second ago.
    let token = new_token();
    let record = InviteRecord {
        id: PersonId(format!("p-{}", uuid::Uuid::new_v4().simple())),
        meeting: SLUG.into(),
        role: Role::Rapporteur,
        group: Some(1),
        name: "Expired".into(),
        token_hash: hash_token(&token),
        created_at: now_ms() - 10_000,
        expires_at: Some(now_ms() - 1_000),
        revoked_at: None,
    };
    server.state.store.create_invite(&record).await.unwrap();
    assert_eq!(upgrade_status(&server.ws_url(&token)).await, 401);

    // Revoked while connected: the live connection ends at once and the token is dead.
    let admin = server.invite(Role::Secretariat, None).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let person = server.person_id(&token).await;
    let doc = server.group_doc(1).await;
    let mut live = Peer::join(&server.ws_url(&token)).await;
    Replica::fetch(&mut live, &doc).await;
    let reply = http(
        server.addr,
        "DELETE",
        &format!("/api/invites/{person}"),
        &admin,
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 204"), "{reply}");
    live.expect_closed().await;
    assert_eq!(upgrade_status(&server.ws_url(&token)).await, 401);
    server.stop().await;
}

fn ephemeral(from: &Peer, sender_id: &str, doc: &str, data: Value) -> Value {
    map(vec![
        ("type", text("ephemeral")),
        ("senderId", text(sender_id)),
        ("targetId", text("server")),
        ("documentId", text(doc)),
        ("count", Value::Integer(1.into())),
        ("sessionId", text(&format!("s-{}", from.id))),
        ("data", Value::Bytes(encode(&data))),
    ])
}

/// The next `ephemeral` a peer receives, decoded.
async fn next_ephemeral(peer: &mut Peer) -> (String, Value) {
    loop {
        match peer.next().await {
            Event::Message(m) if field_text(&m, "type") == Some("ephemeral") => {
                let sender = field_text(&m, "senderId").unwrap().to_owned();
                let Some(Value::Bytes(data)) = field(&m, "data") else {
                    panic!("ephemeral without data")
                };
                return (sender, ciborium::de::from_reader(data.as_slice()).unwrap());
            }
            Event::Message(_) => continue,
            Event::Closed => panic!("closed"),
        }
    }
}

#[tokio::test]
async fn presence_and_sender_ids_cannot_be_forged() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let victim_token = server.invite(Role::Rapporteur, Some(1)).await;
    let victim_person = server.person_id(&victim_token).await;
    let liar_token = server.invite(Role::Rapporteur, Some(1)).await;
    let liar_person = server.person_id(&liar_token).await;
    let witness_token = server.invite(Role::Delegate, None).await;

    let mut victim = Peer::join(&server.ws_url(&victim_token)).await;
    Replica::fetch(&mut victim, &doc).await;
    let mut witness = Peer::join(&server.ws_url(&witness_token)).await;
    Replica::fetch(&mut witness, &doc).await;
    let mut liar = Peer::join(&server.ws_url(&liar_token)).await;
    Replica::fetch(&mut liar, &doc).await;

    // Presence claiming the victim's id, under the victim's peer id: not relayed at all.
    let claim = map(vec![
        ("marker", text("forged-sender-id")),
        (
            "sender",
            map(vec![
                ("person", text(&victim_person)),
                ("name", text("Chair")),
            ]),
        ),
    ]);
    let forged = ephemeral(&liar, &victim.id.clone(), &doc, claim.clone());
    liar.send(&forged).await;
    // Then under its own peer id: relayed, stamped with the liar's real identity.
    let own = ephemeral(&liar, &liar.id.clone(), &doc, claim);
    liar.send(&own).await;
    let (sender, data) = next_ephemeral(&mut witness).await;
    assert_eq!(
        sender, liar.id,
        "a message under a forged sender id was relayed"
    );
    let stamped = field(&data, "sender").unwrap();
    assert_eq!(field_text(stamped, "person"), Some(liar_person.as_str()));
    assert_ne!(field_text(stamped, "name"), Some("Chair"));

    // A second join under the victim's peer id ends the liar's connection.
    let rejoin = map(vec![
        ("type", text("join")),
        ("senderId", text(&victim.id.clone())),
        ("peerMetadata", Value::Map(vec![])),
        ("supportedProtocolVersions", Value::Array(vec![text("1")])),
    ]);
    liar.send(&rejoin).await;
    assert!(liar.expect_error().await.contains("joins once"));
    liar.expect_closed().await;

    // An oversized presence message is refused; the victim is unaffected.
    let huge = map(vec![("blob", Value::Bytes(vec![7; 20_000]))]);
    victim
        .send(&ephemeral(&victim, &victim.id.clone(), &doc, huge))
        .await;
    assert!(victim.expect_error().await.contains("too large"));
    let fetched = Replica::fetch(&mut victim, &doc).await;
    assert!(!fetched.doc.get_heads().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_document_is_refused_whole() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let mut peer = Peer::join(&server.ws_url(&token)).await;
    let mut replica = Replica::fetch(&mut peer, &doc).await;
    // 201 bullets of 400 characters in one change: each is valid, the section is not. (A
    // change of more operations than `sync::chunks::MAX_CHANGE_OPS` is refused unread.)
    replica
        .doc
        .transact::<_, _, AutomergeError>(|tx| {
            let sections = tx.get(ROOT, "sections")?.unwrap().1;
            let section = tx.get(&sections, 0)?.unwrap().1;
            let bullets = tx.get(&section, "bullets")?.unwrap().1;
            for i in 0..201 {
                let b = tx.insert_object(&bullets, i, ObjType::Map)?;
                tx.put(&b, "id", format!("b-{i}"))?;
                let t = tx.put_object(&b, "text", ObjType::Text)?;
                tx.splice_text(&t, 0, 0, &"y".repeat(400))?;
                tx.put_object(&b, "proposedBy", ObjType::List)?;
                tx.put_object(&b, "tags", ObjType::List)?;
                tx.put(&b, "status", "proposed")?;
                tx.put(&b, "createdBy", me.as_str())?;
                tx.put(&b, "createdAt", 1_i64)?;
            }
            Ok(())
        })
        .unwrap();
    replica.push_unacked(&mut peer).await;
    let err = peer.expect_error().await;
    assert!(err.contains("at most 200 bullets"), "{err}");

    // Nothing of it was kept: a fresh client sees an empty section and can still write.
    let mut peer = Peer::join(&server.ws_url(&token)).await;
    let mut fresh = Replica::fetch(&mut peer, &doc).await;
    assert!(bullet_texts(&fresh.doc).is_empty());
    add_bullet(&mut fresh.doc, "ok", "A normal bullet", &me, "proposed");
    fresh.sync_acked(&mut peer).await;
    server.stop().await;
}

#[tokio::test]
async fn a_bloom_filter_that_would_crash_automerge_is_refused() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let mut editor = Peer::join(&server.ws_url(&token)).await;
    let mut replica = Replica::fetch(&mut editor, &doc).await;

    // Found by fuzzing: a `have` whose Bloom filter has an entry and zero bits per entry made
    // automerge divide by zero inside the document's actor. Any reader could send it.
    let reader_token = server.invite(Role::Delegate, None).await;
    let mut reader = Peer::join(&server.ws_url(&reader_token)).await;
    let hostile = vec![0x42, 0, 0, 1, 0, 3, 1, 0, 7, 0];
    reader.send_sync(&doc, "sync", hostile).await;
    let err = reader.expect_error().await;
    assert!(err.contains("Bloom filter"), "{err}");

    // The document's actor is alive and the editor's session goes on as it was.
    add_bullet(&mut replica.doc, "b-1", "After the attack", &me, "proposed");
    replica.sync_acked(&mut editor).await;
    server.stop().await;
}

#[tokio::test]
async fn a_change_bundle_that_would_exhaust_memory_is_refused_unread() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let mut editor = Peer::join(&server.ws_url(&token)).await;
    let mut replica = Replica::fetch(&mut editor, &doc).await;

    // Found by fuzzing: a 415-byte sync message whose change bundle made automerge spend
    // seconds and gigabytes before failing. Only an editor gets this far; it is refused before
    // automerge reads it (first byte: the fuzz target's mode).
    let other_token = server.invite(Role::Rapporteur, Some(1)).await;
    let mut hostile = Peer::join(&server.ws_url(&other_token)).await;
    let found = include_bytes!("../../../fuzz/corpus/accept/bundle-amplification");
    hostile.send_sync(&doc, "sync", found[1..].to_vec()).await;
    // Not automerge's "malformed change": the message never reached it.
    let err = hostile.expect_error().await;
    assert!(err.contains("bundles are not accepted"), "{err}");

    // A well-formed bundle of real changes is refused the same way: no client sends them.
    let mut other = Replica::fetch(&mut hostile, &doc).await;
    let before = other.doc.get_heads();
    add_bullet(&mut other.doc, "b-2", "Sent as a bundle", &me, "proposed");
    let hashes: Vec<_> = other
        .doc
        .get_changes(&before)
        .iter()
        .map(|c| c.hash())
        .collect();
    let bundle = other.doc.bundle(hashes).unwrap();
    let message = carrying(other.doc.get_heads(), vec![bundle.bytes().to_vec()]);
    hostile.send_sync(&doc, "sync", message).await;
    let err = hostile.expect_error().await;
    assert!(err.contains("bundles are not accepted"), "{err}");

    // The document's actor is alive and the editor's session goes on as it was.
    add_bullet(&mut replica.doc, "b-1", "After the attack", &me, "proposed");
    replica.sync_acked(&mut editor).await;
    server.stop().await;
}

#[tokio::test]
async fn changes_waiting_too_long_for_their_dependencies_are_dropped() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let mut peer = Peer::join(&server.ws_url(&token)).await;
    let mut replica = Replica::fetch(&mut peer, &doc).await;

    // A bullet, then a thousand rewrites of it: the rewrites are sent, the bullet is not, so
    // they all wait for it, past the 4 MiB the server keeps waiting per document.
    let base = replica.doc.get_heads();
    add_bullet(&mut replica.doc, "b-1", "The first text", &me, "proposed");
    for i in 0..1_100 {
        replica
            .doc
            .transact::<_, _, AutomergeError>(|tx| {
                let sections = tx.get(ROOT, "sections")?.unwrap().1;
                let section = tx.get(&sections, 0)?.unwrap().1;
                let bullets = tx.get(&section, "bullets")?.unwrap().1;
                let bullet = tx.get(&bullets, 0)?.unwrap().1;
                // One operation of 4 KB: a text may also be a plain string.
                tx.put(&bullet, "text", format!("{i:04} {}", "w".repeat(4_000)))?;
                Ok(())
            })
            .unwrap();
    }
    let changes = replica.doc.get_changes(&base);
    let (first, rewrites) = changes.split_first().unwrap();
    let heads = replica.doc.get_heads();
    for batch in rewrites.chunks(200) {
        let chunks = batch.iter().map(|c| c.raw_bytes().to_vec()).collect();
        peer.send_sync(&doc, "sync", carrying(heads.clone(), chunks))
            .await;
    }
    let err = peer.expect_error().await;
    assert!(err.contains("never arrived were dropped"), "{err}");

    // The missing bullet arrives: the dropped rewrites do not come back with it.
    let mut peer = Peer::join(&server.ws_url(&token)).await;
    let mut fresh = Replica::fetch(&mut peer, &doc).await;
    fresh.doc.apply_changes([first.clone()]).unwrap();
    fresh.sync_acked(&mut peer).await;
    let witness_token = server.invite(Role::Delegate, None).await;
    let mut witness_peer = Peer::join(&server.ws_url(&witness_token)).await;
    let witness = Replica::fetch(&mut witness_peer, &doc).await;
    assert_eq!(bullet_texts(&witness.doc), ["The first text"]);
    server.stop().await;
}

#[tokio::test]
async fn a_waiting_change_whose_dependency_comes_next_is_still_checked() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let reader_token = server.invite(Role::Delegate, None).await;
    let mut reader = Peer::join(&server.ws_url(&reader_token)).await;
    let mut witness = Replica::fetch(&mut reader, &doc).await;
    let dimension = |d: &automerge::Automerge| {
        let json = rapporteur::docs::json::document_json(d, None);
        json["group"]["dimension"].as_str().unwrap().to_owned()
    };
    let original = dimension(&witness.doc);

    // A valid change A, and on top of it a change B the schema refuses. B is sent first, so
    // it waits for A; A follows at once, often in the same batch. B must be checked when A
    // lets it apply, not slip in with A's answer.
    for round in 0..20 {
        let mut peer = Peer::join(&server.ws_url(&token)).await;
        let mut replica = Replica::fetch(&mut peer, &doc).await;
        let base = replica.doc.get_heads();
        add_bullet(
            &mut replica.doc,
            &format!("b-{round}"),
            &format!("Valid {round}"),
            &me,
            "proposed",
        );
        replica
            .doc
            .transact::<_, _, AutomergeError>(|tx| {
                let group = tx.get(ROOT, "group")?.unwrap().1;
                tx.put(&group, "dimension", format!("Hijacked {round}"))?;
                Ok(())
            })
            .unwrap();
        let changes = replica.doc.get_changes(&base);
        let heads = replica.doc.get_heads();
        for change in [&changes[1], &changes[0]] {
            let message = carrying(heads.clone(), vec![change.raw_bytes().to_vec()]);
            peer.send_sync(&doc, "sync", message).await;
        }
        let err = peer.expect_error().await;
        assert!(err.contains("may not change"), "{err}");
    }
    witness
        .sync_until(&mut reader, |r| !r.doc.get_heads().is_empty())
        .await;
    let mut peer = Peer::join(&server.ws_url(&reader_token)).await;
    let fresh = Replica::fetch(&mut peer, &doc).await;
    assert_eq!(dimension(&fresh.doc), original);
    server.stop().await;
}

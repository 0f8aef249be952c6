//! Network faults: a client dropped in the middle of a frame, clients that come back with the
//! sync state they saved (stale by then) after many offline edits, and a consumer too slow to
//! read what it is sent. Every client converges with the server's stored copy; the slow one is
//! disconnected without holding anyone up, and resyncs.

use std::time::Duration;

use automerge::sync;
use ciborium::Value;
use rapporteur::meeting::Role;
use rapporteur::sync::limits::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::MaybeTlsStream;

use crate::forged::{add_bullet, bullet_texts};
use crate::support::*;

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// The sync state a client saved at the end of its last session.
fn saved(state: &sync::State) -> sync::State {
    sync::State::decode(&state.encode()).unwrap()
}

/// Opens a WebSocket by hand and sends the first half of one binary frame, then drops the
/// connection.
async fn half_a_frame(server: &TestServer, token: &str, payload: &[u8]) {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "GET /sync?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    // Binary, final; masked, with a 16-bit length; mask of zeros keeps the payload as is.
    let mut frame = vec![0x82, 0x80 | 126];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(&payload[..payload.len() / 2]);
    tcp.write_all(&frame).await.unwrap();
    drop(tcp);
}

#[tokio::test]
async fn a_client_dropped_mid_frame_reconnects_with_stale_state_and_converges() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let other_token = server.invite(Role::Rapporteur, Some(1)).await;
    let mut other = Peer::join(&server.ws_url(&other_token)).await;
    let mut others = Replica::fetch(&mut other, &doc).await;

    let mut peer = Peer::join(&server.ws_url(&token)).await;
    let mut replica = Replica::fetch(&mut peer, &doc).await;
    drop(peer);
    add_bullet(
        &mut replica.doc,
        "b-1",
        "Cut off in the middle",
        &me,
        "proposed",
    );
    // The edit's sync message, cut in half by a dying connection.
    let msg = sync::SyncDoc::generate_sync_message(&replica.doc, &mut saved(&replica.state))
        .unwrap()
        .encode();
    let frame = encode(&map(vec![
        ("type", text("sync")),
        ("senderId", text("peer-cut")),
        ("targetId", text("server")),
        ("documentId", text(&doc)),
        ("data", Value::Bytes(msg)),
    ]));
    half_a_frame(&server, &token, &frame).await;

    // Back, with the sync state it saved.
    let mut peer = Peer::join(&server.ws_url(&token)).await;
    replica.state = saved(&replica.state);
    replica.sync_acked(&mut peer).await;
    others
        .sync_until(&mut other, |r| bullet_texts(&r.doc).len() == 1)
        .await;
    assert_eq!(bullet_texts(&others.doc), ["Cut off in the middle"]);
    server.stop().await;
}

#[tokio::test]
async fn an_offline_client_with_many_edits_converges_with_everyone() {
    let server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let a_token = server.invite(Role::Rapporteur, Some(1)).await;
    let a_me = server.person_id(&a_token).await;
    let b_token = server.invite(Role::Rapporteur, Some(1)).await;
    let b_me = server.person_id(&b_token).await;

    let mut a_peer = Peer::join(&server.ws_url(&a_token)).await;
    let mut a = Replica::fetch(&mut a_peer, &doc).await;
    add_bullet(&mut a.doc, "a-0", "Before the outage", &a_me, "proposed");
    a.sync_acked(&mut a_peer).await;
    drop(a_peer); // Wi-Fi gone

    // Offline: many edits, in many changes.
    for i in 1..=40 {
        add_bullet(
            &mut a.doc,
            &format!("a-{i}"),
            &format!("Offline {i}"),
            &a_me,
            "proposed",
        );
    }
    // Meanwhile the other editor goes on online.
    let mut b_peer = Peer::join(&server.ws_url(&b_token)).await;
    let mut b = Replica::fetch(&mut b_peer, &doc).await;
    for i in 0..20 {
        add_bullet(
            &mut b.doc,
            &format!("b-{i}"),
            &format!("Online {i}"),
            &b_me,
            "agreed",
        );
        b.push(&mut b_peer).await;
    }
    b.sync_acked(&mut b_peer).await;

    // Back online with the saved (now stale) sync state.
    let mut a_peer = Peer::join(&server.ws_url(&a_token)).await;
    a.state = saved(&a.state);
    a.sync_acked(&mut a_peer).await;
    a.sync_until(&mut a_peer, |r| bullet_texts(&r.doc).len() == 61)
        .await;
    b.sync_until(&mut b_peer, |r| bullet_texts(&r.doc).len() == 61)
        .await;
    assert_eq!(sorted(a.doc.get_heads()), sorted(b.doc.get_heads()));
    assert_eq!(bullet_texts(&a.doc), bullet_texts(&b.doc));

    // And the stored copy, after a restart, is the same document.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir).await;
    let mut peer = Peer::join(&server.ws_url(&b_token)).await;
    let fresh = Replica::fetch(&mut peer, &doc).await;
    assert_eq!(sorted(fresh.doc.get_heads()), sorted(a.doc.get_heads()));
    server.stop().await;
}

/// A peer whose socket has a tiny receive buffer, so that it fills quickly when not read.
async fn slow_peer(url: &str, addr: std::net::SocketAddr) -> Peer {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let mut peer = Peer {
        ws,
        id: "peer-slow".into(),
    };
    let join = map(vec![
        ("type", text("join")),
        ("senderId", text("peer-slow")),
        ("peerMetadata", Value::Map(vec![])),
        ("supportedProtocolVersions", Value::Array(vec![text("1")])),
    ]);
    peer.send(&join).await;
    assert!(matches!(peer.next().await, Event::Message(_)));
    peer
}

async fn metric(addr: std::net::SocketAddr, name: &str) -> i64 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    buf.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_disconnected_without_slowing_anyone_and_resyncs() {
    // The writer below floods presence on purpose: lift the rate limit for this server.
    let options = Options {
        limits: Limits {
            messages_per_sec: 1e9,
            message_burst: 1e9,
            ..Limits::default()
        },
        ..Options::default()
    };
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), options).await;
    let doc = server.group_doc(1).await;
    let writer_token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&writer_token).await;
    let viewer_token = server.invite(Role::Delegate, None).await;

    let mut writer = Peer::join(&server.ws_url(&writer_token)).await;
    let mut written = Replica::fetch(&mut writer, &doc).await;
    let mut fast = Peer::join(&server.ws_url(&viewer_token)).await;
    let mut fast_copy = Replica::fetch(&mut fast, &doc).await;
    let mut slow = slow_peer(&server.ws_url(&viewer_token), server.addr).await;
    // The slow viewer follows the document, then stops reading.
    slow.send_sync(&doc, "request", {
        let mut s = sync::State::new();
        sync::SyncDoc::generate_sync_message(&automerge::Automerge::new(), &mut s)
            .unwrap()
            .encode()
    })
    .await;

    // The fast viewer reads everything in the background and counts the presence it gets,
    // until it has counted `target`.
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0u64);
    let (target_tx, mut target_rx) = tokio::sync::watch::channel(u64::MAX);
    let reader = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            if n >= *target_rx.borrow() {
                return (fast, n);
            }
            tokio::select! {
                event = fast.next() => match event {
                    Event::Message(m) if field_text(&m, "type") == Some("ephemeral") => {
                        n += 1;
                        let _ = count_tx.send(n);
                    }
                    Event::Message(_) => {}
                    Event::Closed => panic!("the fast viewer was disconnected"),
                },
                _ = target_rx.changed() => {}
            }
        }
    });

    // Presence of 15 KiB, as fast as the fast viewer takes it, until the server gives up on
    // the slow viewer (bounded: the outbox holds 4,096 frames).
    let blob = map(vec![("cursor", Value::Bytes(vec![1; 15 * 1024]))]);
    let mut sent = 0u64;
    while metric(server.addr, "rapporteur_slow_consumers_total").await == 0 {
        assert!(sent < 20_000, "the slow consumer was never disconnected");
        for _ in 0..256 {
            sent += 1;
            let msg = map(vec![
                ("type", text("ephemeral")),
                ("senderId", text(&writer.id.clone())),
                ("targetId", text("server")),
                ("documentId", text(&doc)),
                ("count", Value::Integer(sent.into())),
                ("sessionId", text("s-writer")),
                ("data", Value::Bytes(encode(&blob))),
            ]);
            writer.send(&msg).await;
        }
        // Keep the fast viewer within its own queue's bound: it must not look slow itself.
        let behind = sent.saturating_sub(1024);
        tokio::time::timeout(WAIT, count_rx.wait_for(|n| *n >= behind))
            .await
            .expect("the fast viewer fell behind")
            .unwrap();
    }
    // The fast viewer got every presence message; nobody waited for the slow one.
    let _ = target_tx.send(sent);
    let (mut fast, got) = tokio::time::timeout(WAIT * 3, reader)
        .await
        .expect("the fast viewer fell behind")
        .unwrap();
    assert_eq!(got, sent);

    // The server let go of the slow connection although its client still holds the socket
    // open without reading: writer, fast viewer remain.
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(server.addr, "rapporteur_connections").await != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow connection was never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Edits still flow to the others.
    add_bullet(
        &mut written.doc,
        "b-1",
        "After the slow viewer left",
        &me,
        "proposed",
    );
    written.sync_acked(&mut writer).await;
    fast_copy
        .sync_until(&mut fast, |r| bullet_texts(&r.doc).len() == 1)
        .await;

    // The slow client finds its connection closed, reconnects and resyncs.
    slow.expect_closed().await;
    let mut slow = Peer::join(&server.ws_url(&viewer_token)).await;
    let mut resynced = Replica::fetch(&mut slow, &doc).await;
    resynced
        .sync_until(&mut slow, |r| bullet_texts(&r.doc).len() == 1)
        .await;
    assert_eq!(
        sorted(resynced.doc.get_heads()),
        sorted(written.doc.get_heads())
    );
    server.stop().await;
}

//! Database faults of the real kind, on the real databases: the SQLite file cannot grow (the
//! kernel refuses the write, as on a full disk) under the real binary, and the PostgreSQL
//! database turns read-only under a running server, its connections cut.
//!
//! `storage_faults` injects failures through a wrapper around the store, which makes every
//! failure mode easy to reach; these tests check that the real ones look the same from outside:
//! the edit is refused with a clear error and never acknowledged, the node reports not ready,
//! and once the fault is gone the node is ready again, the client's copy goes through, and
//! nothing acknowledged is lost.

use std::net::SocketAddr;
use std::path::Path;

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ReadDoc, ROOT};
use rapporteur::meeting::Role;
use sqlx::Connection;

use crate::durability::{rapporteur_of_group_1, spawn, spawn_with};
use crate::forged::{add_bullet, bullet_texts};
use crate::support::*;

/// Replaces the text of the first bullet of the first section.
fn retype(doc: &mut Automerge, text: &str) {
    doc.transact::<_, _, AutomergeError>(|tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        let section = tx.get(&sections, 0)?.unwrap().1;
        let bullets = tx.get(&section, "bullets")?.unwrap().1;
        let bullet = tx.get(&bullets, 0)?.unwrap().1;
        let t = tx.get(&bullet, "text")?.unwrap().1;
        let len = tx.length(&t) as isize;
        tx.splice_text(&t, 0, len, text)?;
        Ok(())
    })
    .unwrap();
}

/// A text of `len` characters that does not compress well, different for each `seed`.
fn prose(seed: u64, len: usize) -> String {
    let mut rng = crate::crash::SplitMix::new(seed);
    let words = [
        "data",
        "return",
        "labour",
        "rights",
        "border",
        "remittance",
        "skills",
    ];
    let mut out = String::new();
    while out.len() < len {
        out.push_str(words[rng.below(words.len() as u64) as usize]);
        out.push_str(&format!(" {} ", rng.below(10_000)));
    }
    out.truncate(len);
    out
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Sets the soft limit on the size of files the process may write (`RLIMIT_FSIZE`); a write
/// past it fails with `EFBIG`, as a write to a full disk fails with `ENOSPC`.
fn limit_file_size(pid: u32, bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `limit` and writes nothing when the old-limit pointer is null.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test]
async fn a_database_file_that_cannot_grow_refuses_edits_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // A write past the limit also raises SIGXFSZ, whose default kills the process: a full
    // disk does not, so the server runs with it ignored (dispositions survive `exec`).
    let (mut child, addr) = spawn_with(dir.path(), |command| {
        // SAFETY: only an async-signal-safe call between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
    })
    .await;
    let socket: SocketAddr = addr.parse().unwrap();
    let (token, person, doc) = rapporteur_of_group_1(dir.path(), &addr).await;
    let url = format!("ws://{addr}/sync?token={token}");
    let mut peer = Peer::join(&url).await;
    let mut replica = Replica::fetch(&mut peer, &doc).await;
    add_bullet(
        &mut replica.doc,
        "b-1",
        "Stored before",
        &person,
        "proposed",
    );
    replica.sync_acked(&mut peer).await;
    assert_eq!(http_status(socket, "/readyz").await, 200);

    // The files may not grow past their present size: the next few writes fail for good.
    let db = dir.path().join("r.db");
    let wal = dir.path().join("r.db-wal");
    limit_file_size(child.id().unwrap(), Some(file_len(&db).max(file_len(&wal))));
    let mut acknowledged = String::from("Stored before");
    let mut refusal = None;
    for round in 0..1_000 {
        let text = prose(round, 4_000);
        retype(&mut replica.doc, &text);
        match replica.try_sync_acked(&mut peer).await {
            Ok(()) => acknowledged = text,
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let refusal = refusal.expect("the database file never filled up");
    assert!(refusal.contains("could not store"), "{refusal}");
    assert!(
        !replica.acknowledged(),
        "acknowledged a change it did not store"
    );
    assert_eq!(http_status(socket, "/readyz").await, 503);
    // Still not ready while the fault lasts: readiness is a real write, not a flag.
    assert_eq!(http_status(socket, "/readyz").await, 503);

    // Space again: ready before anyone writes, and the client's copy goes through.
    limit_file_size(child.id().unwrap(), None);
    assert_eq!(http_status(socket, "/readyz").await, 200);
    let mut peer = Peer::join(&url).await;
    replica.state = automerge::sync::State::new();
    replica.sync_acked(&mut peer).await;
    let written = bullet_texts(&replica.doc)[0].clone();
    assert_ne!(written, acknowledged, "the refused edit is the newest text");

    // Everything, the edit written while the disk was full included, survives a crash.
    child.kill().await.unwrap();
    let (mut child, addr) = spawn(dir.path()).await;
    let mut peer = Peer::join(&format!("ws://{addr}/sync?token={token}")).await;
    let fresh = Replica::fetch(&mut peer, &doc).await;
    assert_eq!(bullet_texts(&fresh.doc)[0], written);
    let (mut a, mut b) = (fresh.doc.get_heads(), replica.doc.get_heads());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    child.kill().await.unwrap();
}

/// Runs SQL on the PostgreSQL server as its administrator.
async fn admin(sql: &str) {
    let mut conn = sqlx::PgConnection::connect(&rapporteur::store::testing::postgres_admin_url())
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Makes the database read-only (or writable again) and cuts every connection to it, so that
/// the server's pool reconnects into the new setting.
async fn set_read_only(database: &str, read_only: bool) {
    let setting = if read_only { "on" } else { "off" };
    admin(&format!(
        "ALTER DATABASE {database} SET default_transaction_read_only = {setting};
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = '{database}' AND pid <> pg_backend_pid();"
    ))
    .await;
}

#[tokio::test]
async fn a_postgres_database_turning_read_only_refuses_edits_and_recovers() {
    let url = rapporteur::store::testing::fresh_postgres_database().await;
    let database = url.rsplit('/').next().unwrap().to_owned();
    let options = || Options {
        database_url: Some(url.clone()),
        ..Options::default()
    };
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), options()).await;
    let doc = server.group_doc(1).await;
    let token = server.invite(Role::Rapporteur, Some(1)).await;
    let me = server.person_id(&token).await;
    let ws = server.ws_url(&token);
    let mut peer = Peer::join(&ws).await;
    let mut replica = Replica::fetch(&mut peer, &doc).await;
    add_bullet(&mut replica.doc, "b-1", "Stored before", &me, "proposed");
    replica.sync_acked(&mut peer).await;
    assert_eq!(http_status(server.addr, "/readyz").await, 200);

    // The database goes read-only and every connection is cut: the edit is refused with a
    // clear error, never acknowledged, and the node is not ready.
    set_read_only(&database, true).await;
    add_bullet(
        &mut replica.doc,
        "b-2",
        "Written while read-only",
        &me,
        "proposed",
    );
    let err = replica.try_sync_acked(&mut peer).await.unwrap_err();
    assert!(err.contains("could not store"), "{err}");
    assert!(
        !replica.acknowledged(),
        "acknowledged a change it did not store"
    );
    assert_eq!(http_status(server.addr, "/readyz").await, 503);

    // Writable again: ready before anyone writes (once the pool has let go of the
    // connections being cut, which takes a moment); the client's copy goes through.
    set_read_only(&database, false).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while http_status(server.addr, "/readyz").await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A connection of the pool opened while the database was read-only may still be on its
    // way out: a client that is refused once reconnects and sends again, as the web app does.
    loop {
        let mut peer = Peer::join(&ws).await;
        replica.state = automerge::sync::State::new();
        match replica.try_sync_acked(&mut peer).await {
            Ok(()) => break,
            Err(e) if e.contains("could not store") => {
                assert!(tokio::time::Instant::now() < deadline, "never stored: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }

    // A new node on the same database has all of it.
    let dir = server.stop().await;
    let server = TestServer::start_with(dir, options()).await;
    let mut peer = Peer::join(&server.ws_url(&token)).await;
    let fresh = Replica::fetch(&mut peer, &doc).await;
    assert_eq!(
        bullet_texts(&fresh.doc),
        ["Stored before", "Written while read-only"]
    );
    server.stop().await;
}

//! Durability against the real binary: edits the server acknowledged survive `kill -9`.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::forged::{add_bullet, bullet_texts};
use crate::support::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_rapporteur");

pub async fn spawn(dir: &std::path::Path) -> (Child, String) {
    spawn_with(dir, |_| {}).await
}

/// `spawn`, with the command adjusted first (limits, signal dispositions).
pub async fn spawn_with(
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut Command),
) -> (Child, String) {
    let mut command = Command::new(BIN);
    adjust(&mut command);
    let mut child = command
        .args(["serve", "--bind", "127.0.0.1:0", "--web-dir"])
        .arg(dir.join("web"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.join("r.db").display()))
        .env(
            "RUST_LOG",
            std::env::var("IT_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(if std::env::var("IT_SERVER_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("rapporteur listening on http://") {
                return url.to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .unwrap();
    (child, addr)
}

pub fn cli(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.join("r.db").display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Invites a rapporteur of group 1 with the CLI, as an organiser would; returns their token,
/// person id and group 1's document id (found through the REST API).
pub async fn rapporteur_of_group_1(dir: &std::path::Path, addr: &str) -> (String, String, String) {
    let url = cli(
        dir,
        &[
            "invite",
            "--meeting",
            SLUG,
            "--role",
            "rapporteur",
            "--group",
            "1",
        ],
    );
    assert!(url.contains("/join/"));
    let token = url.trim().rsplit('/').next().unwrap().to_owned();
    let me: serde_json::Value = get_json(addr, "/api/me", &token).await;
    let person = me["person"]["id"].as_str().unwrap().to_owned();
    let meeting = get_json(addr, &format!("/api/meetings/{SLUG}"), &token).await;
    let doc = meeting["groups"][0]["outcomeDocUrl"]
        .as_str()
        .unwrap()
        .trim_start_matches("automerge:")
        .to_owned();
    (token, person, doc)
}

#[tokio::test]
async fn acknowledged_edits_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn(dir.path()).await;
    let (token, person, doc) = rapporteur_of_group_1(dir.path(), &addr).await;
    let ws = format!("ws://{addr}/sync?token={token}");
    let mut peer = Peer::join(&ws).await;
    let mut replica = Replica::fetch(&mut peer, &doc).await;
    let mut acknowledged = Vec::new();
    for round in 0..5 {
        for i in 0..4 {
            let text = format!("Commitment {round}-{i}");
            add_bullet(
                &mut replica.doc,
                &format!("b-{round}-{i}"),
                &text,
                &person,
                "proposed",
            );
            replica.push(&mut peer).await;
            acknowledged.push(text);
        }
        replica.sync_acked(&mut peer).await;
    }
    // More edits in flight when the server dies: these may or may not survive.
    add_bullet(&mut replica.doc, "b-late", "In flight", &person, "proposed");
    replica.push(&mut peer).await;
    child.kill().await.unwrap(); // SIGKILL

    let (mut child, addr) = spawn(dir.path()).await;
    let mut peer = Peer::join(&format!("ws://{addr}/sync?token={token}")).await;
    let fresh = Replica::fetch(&mut peer, &doc).await;
    let texts = bullet_texts(&fresh.doc);
    for text in &acknowledged {
        assert!(texts.contains(text), "lost an acknowledged edit: {text}");
    }
    child.kill().await.unwrap();
}

pub async fn get_json(addr: &str, path: &str, token: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

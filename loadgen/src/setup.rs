//! Getting documents and credentials for a run.
//!
//! Rapporteur: invite tokens are minted with `rapporteur invite` against the server's own
//! database (or passed in), the documents' URLs are read from `GET /api/meetings/{slug}`, and
//! each writer's person id from `GET /api/me` (a new bullet must name its creator).
//! The stock server: it has no accounts; the generator creates the documents itself, in the
//! same shape, and every client uses them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use anyhow::{anyhow, bail, Context};

/// A plain HTTP/1.1 GET on 127.0.0.1 with a bearer token; returns the JSON body.
pub fn get_json(base: &str, path: &str, token: &str) -> anyhow::Result<serde_json::Value> {
    let host = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut s = TcpStream::connect(&host).with_context(|| format!("connecting to {host}"))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(serde_json::from_str(&body)?)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Mints an invite with the server's CLI and returns its token.
pub fn mint(
    bin: &str,
    database_url: &str,
    meeting: &str,
    role: &str,
    group: Option<usize>,
    name: &str,
) -> anyhow::Result<String> {
    let mut cmd = Command::new(bin);
    cmd.args([
        "invite",
        "--meeting",
        meeting,
        "--role",
        role,
        "--name",
        name,
        "--database-url",
        database_url,
    ]);
    if let Some(g) = group {
        cmd.args(["--group", &g.to_string()]);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {bin} invite"))?;
    if !out.status.success() {
        bail!(
            "{bin} invite failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let url = String::from_utf8(out.stdout)?;
    url.trim()
        .rsplit('/')
        .next()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no token in {url}"))
}

/// The meeting's group outcome documents (in group order) and its index document.
pub fn meeting_docs(
    base: &str,
    meeting: &str,
    token: &str,
) -> anyhow::Result<(Vec<String>, String)> {
    let m = get_json(base, &format!("/api/meetings/{meeting}"), token)?;
    let strip = |v: &serde_json::Value| {
        v.as_str()
            .map(|s| s.trim_start_matches("automerge:").to_owned())
    };
    let index = strip(&m["indexDocUrl"]).ok_or_else(|| anyhow!("no indexDocUrl"))?;
    let mut groups: Vec<(u64, String)> = m["groups"]
        .as_array()
        .ok_or_else(|| anyhow!("no groups"))?
        .iter()
        .filter_map(|g| Some((g["number"].as_u64()?, strip(&g["outcomeDocUrl"])?)))
        .collect();
    groups.sort();
    Ok((groups.into_iter().map(|(_, d)| d).collect(), index))
}

pub fn person_id(base: &str, token: &str) -> anyhow::Result<String> {
    let me = get_json(base, "/api/me", token)?;
    me["person"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no person id in /api/me"))
}

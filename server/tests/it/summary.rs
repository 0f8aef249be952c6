//! The chair's summary end to end: groups submit over REST after editing over sync; two
//! co-facilitators edit the summary live while one of them merges; re-merge after a
//! resubmission (unchanged, changed and unedited, changed and edited, removed sources);
//! consolidation; sign-off and the lock on an issued summary; a new revision; history diffs;
//! and the DOCX export read back by LibreOffice.

use std::net::SocketAddr;

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ReadDoc, ROOT};
use rapporteur::docs::json::document_json;
use rapporteur::meeting::Role;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::forged::add_bullet;
use crate::support::*;

/// One HTTP/1.1 request with a bearer token; returns the status and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Vec<u8>) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("HTTP answer in time")
        .unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut rest = buf[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = rest[line_end + 2 + size + 2..].to_vec();
        }
        rest = out;
    }
    (status, rest)
}

pub async fn api(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, bytes) = http(addr, method, path, token, body).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub fn p(path: &str) -> String {
    format!("/api/meetings/{SLUG}{path}")
}

/// A rapporteur's live session on their group's outcome.
struct Editor {
    peer: Peer,
    replica: Replica,
    person: String,
}

impl Editor {
    async fn open(server: &TestServer, token: &str, doc: &str) -> Self {
        let mut peer = Peer::join(&server.ws_url(token)).await;
        let replica = Replica::fetch(&mut peer, doc).await;
        Self {
            peer,
            replica,
            person: server.person_id(token).await,
        }
    }

    async fn change(&mut self, f: impl FnOnce(&mut Automerge)) {
        f(&mut self.replica.doc);
        self.replica.sync_acked(&mut self.peer).await;
    }
}

pub fn set_bullet_text(doc: &mut Automerge, id: &str, text: &str) {
    let json = document_json(doc, None);
    let idx = json["sections"][0]["bullets"]
        .as_array()
        .unwrap()
        .iter()
        .position(|b| b["id"] == id)
        .unwrap();
    doc.transact::<_, _, AutomergeError>(|tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        let section = tx.get(&sections, 0)?.unwrap().1;
        let bullets = tx.get(&section, "bullets")?.unwrap().1;
        let b = tx.get(&bullets, idx)?.unwrap().1;
        let t = tx.get(&b, "text")?.unwrap().1;
        tx.update_text(&t, text)?;
        Ok(())
    })
    .unwrap();
}

pub fn delete_bullet(doc: &mut Automerge, id: &str) {
    let json = document_json(doc, None);
    let idx = json["sections"][0]["bullets"]
        .as_array()
        .unwrap()
        .iter()
        .position(|b| b["id"] == id)
        .unwrap();
    doc.transact::<_, _, AutomergeError>(|tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        let section = tx.get(&sections, 0)?.unwrap().1;
        let bullets = tx.get(&section, "bullets")?.unwrap().1;
        tx.delete(&bullets, idx)?;
        Ok(())
    })
    .unwrap();
}

/// The summary item citing bullet `bullet` of group `group`, from a JSON view.
fn item_citing<'a>(summary: &'a Value, group: i64, bullet: &str) -> &'a Value {
    summary["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["items"].as_array().unwrap())
        .find(|i| {
            i["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["group"] == group && s["bulletId"] == bullet)
        })
        .unwrap_or_else(|| panic!("no item cites {group}/{bullet}"))
}

pub fn edit_item_text(doc: &mut Automerge, item_id: &str, prefix: &str) {
    let json = document_json(doc, None);
    let (mut si, mut ii) = (0, 0);
    for (a, s) in json["sections"].as_array().unwrap().iter().enumerate() {
        if let Some(b) = s["items"]
            .as_array()
            .unwrap()
            .iter()
            .position(|i| i["id"] == item_id)
        {
            (si, ii) = (a, b);
        }
    }
    doc.transact::<_, _, AutomergeError>(|tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        let section = tx.get(&sections, si)?.unwrap().1;
        let items = tx.get(&section, "items")?.unwrap().1;
        let item = tx.get(&items, ii)?.unwrap().1;
        let t = tx.get(&item, "text")?.unwrap().1;
        tx.splice_text(&t, 0, 0, prefix)?;
        Ok(())
    })
    .unwrap();
}

pub fn splice_preamble(doc: &mut Automerge, text: &str) {
    doc.transact::<_, _, AutomergeError>(|tx| {
        let t = match tx.get(ROOT, "preamble")? {
            Some((_, id)) => id,
            None => tx.put_object(ROOT, "preamble", ObjType::Text)?,
        };
        let at = tx.text(&t)?.chars().count();
        tx.splice_text(&t, at, 0, text)?;
        Ok(())
    })
    .unwrap();
}

pub fn count_items(summary: &Value) -> usize {
    summary["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["items"].as_array().unwrap().len())
        .sum()
}

#[tokio::test]
async fn merge_remerge_consolidate_sign_off_and_export() {
    let server = TestServer::start().await;
    let addr = server.addr;
    // "All co-facilitators" are those whose invites are neither revoked nor expired: drop the
    // bootstrap one.
    server.revoke_existing_invites().await;
    let cof_a = server.invite(Role::CoFacilitator, None).await;
    let cof_b = server.invite(Role::CoFacilitator, None).await;
    let rap1 = server.invite(Role::Rapporteur, Some(1)).await;
    let rap2 = server.invite(Role::Rapporteur, Some(2)).await;
    let delegate = server.invite(Role::Delegate, None).await;
    let summary_doc = server
        .state
        .store
        .meeting(SLUG)
        .await
        .unwrap()
        .unwrap()
        .summary_doc
        .as_str()
        .to_owned();

    // Groups 1 and 2 draft over sync and submit over REST.
    let mut g1 = Editor::open(&server, &rap1, &server.group_doc(1).await).await;
    let me1 = g1.person.clone();
    g1.change(|d| {
        add_bullet(
            d,
            "a",
            "Guarantee access to justice for all migrants",
            &me1,
            "agreed",
        );
        add_bullet(
            d,
            "b",
            "Establish firewalls between services and immigration enforcement",
            &me1,
            "proposed",
        );
        add_bullet(
            d,
            "c",
            "Reduce the transaction costs of remittances to below 3 per cent",
            &me1,
            "agreed",
        );
        add_bullet(
            d,
            "d",
            "Train border officials on human rights",
            &me1,
            "agreed",
        );
    })
    .await;
    let mut g2 = Editor::open(&server, &rap2, &server.group_doc(2).await).await;
    let me2 = g2.person.clone();
    g2.change(|d| {
        add_bullet(
            d,
            "e",
            "Lower the transaction costs of remittances below 3 per cent by 2030",
            &me2,
            "agreed",
        );
        add_bullet(
            d,
            "f",
            "Address the adverse drivers of migration such as climate change",
            &me2,
            "agreed",
        );
    })
    .await;
    for (n, token) in [(1, &rap1), (2, &rap2)] {
        let (st, body) = api(
            addr,
            "POST",
            &p(&format!("/groups/{n}/submit")),
            token,
            Some(json!({})),
        )
        .await;
        assert_eq!(st, 200, "{body}");
    }

    // A delegate follows the summary but may not write it, over sync either.
    let mut pd = Peer::join(&server.ws_url(&delegate)).await;
    let mut sd = Replica::fetch(&mut pd, &summary_doc).await;
    splice_preamble(&mut sd.doc, "A delegate writes.");
    // The server never asks a read-only peer for changes: push it unasked.
    let change = sd.doc.get_changes(&[]).pop().unwrap();
    let push = carrying(sd.doc.get_heads(), vec![change.raw_bytes().to_vec()]);
    pd.send_sync(&summary_doc, "sync", push).await;
    assert!(pd.expect_error().await.contains("only read"));

    // Only co-facilitators merge.
    assert_eq!(
        api(addr, "POST", &p("/summary/merge"), &delegate, None)
            .await
            .0,
        403
    );
    assert_eq!(
        api(addr, "POST", &p("/summary/merge"), &rap1, None).await.0,
        403
    );

    // Two co-facilitators edit the summary live while A merges.
    let mut pa = Peer::join(&server.ws_url(&cof_a)).await;
    let mut sa = Replica::fetch(&mut pa, &summary_doc).await;
    let mut pb = Peer::join(&server.ws_url(&cof_b)).await;
    let mut sb = Replica::fetch(&mut pb, &summary_doc).await;
    splice_preamble(&mut sa.doc, "The co-facilitators thank the host. ");
    sb.doc
        .transact::<_, _, AutomergeError>(|tx| {
            tx.put(ROOT, "title", "Chair's summary of the stocktaking meeting")
        })
        .unwrap();
    let merge_path = p("/summary/merge");
    let (merged, (), ()) = tokio::join!(
        api(addr, "POST", &merge_path, &cof_a, None),
        sa.sync_acked(&mut pa),
        sb.sync_acked(&mut pb),
    );
    assert_eq!(merged.0, 200, "{}", merged.1);
    assert_eq!(
        merged.1,
        json!({"added": 6, "refreshed": 0, "stale": 0, "removedAtSource": 0})
    );
    // Both co-facilitators converge on everything: the merge and each other's edits.
    for (replica, peer) in [(&mut sa, &mut pa), (&mut sb, &mut pb)] {
        replica
            .sync_until(peer, |r| {
                let j = document_json(&r.doc, None);
                count_items(&j) == 6
                    && j["preamble"].as_str().unwrap().contains("thank the host")
                    && j["title"] == "Chair's summary of the stocktaking meeting"
            })
            .await;
    }
    let view = document_json(&sa.doc, None);
    let item_a = item_citing(&view, 1, "a");
    assert_eq!(
        item_a["text"],
        "Guarantee access to justice for all migrants"
    );
    assert_eq!(item_a["sources"][0]["version"], 1);
    assert_eq!(view["sections"][0]["id"], "group-1");
    assert_eq!(view["sections"][0]["items"].as_array().unwrap().len(), 4);
    // The merge is one change, attributed to co-facilitator A.
    let (_, log) = api(addr, "GET", &p("/summary/history"), &delegate, None).await;
    let person_a = server.person_id(&cof_a).await;
    let merges: Vec<&Value> = log["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["message"]
                .as_str()
                .is_some_and(|m| m.contains("\"merge\""))
        })
        .collect();
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0]["by"], person_a);
    // Merging again adds nothing.
    let again = api(addr, "POST", &p("/summary/merge"), &cof_b, None).await;
    assert_eq!(
        again.1,
        json!({"added": 0, "refreshed": 0, "stale": 0, "removedAtSource": 0})
    );

    // B edits the item of bullet d; then group 1 changes a and d, removes b, keeps c; resubmits.
    let item_d = item_citing(&view, 1, "d")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    edit_item_text(&mut sb.doc, &item_d, "Provide training: ");
    sb.sync_acked(&mut pb).await;
    g1.change(|d| {
        set_bullet_text(
            d,
            "a",
            "Guarantee access to justice and legal aid for all migrants",
        );
        set_bullet_text(d, "d", "Train border officials on human rights and gender");
        delete_bullet(d, "b");
    })
    .await;
    let (st, _) = api(addr, "POST", &p("/groups/1/submit"), &rap1, Some(json!({}))).await;
    assert_eq!(st, 200);
    let remerge = api(addr, "POST", &p("/summary/merge"), &cof_a, None).await;
    assert_eq!(
        remerge.1,
        json!({"added": 0, "refreshed": 1, "stale": 2, "removedAtSource": 1})
    );
    let (_, s) = api(addr, "GET", &p("/summary"), &delegate, None).await;
    let doc = &s["document"];
    let a = item_citing(doc, 1, "a");
    assert_eq!(
        a["text"], "Guarantee access to justice for all migrants",
        "not overwritten"
    );
    assert_eq!(
        a["stale"][0]["newText"],
        "Guarantee access to justice and legal aid for all migrants"
    );
    assert_eq!(item_citing(doc, 1, "b")["removedAtSource"][0]["version"], 2);
    assert_eq!(item_citing(doc, 1, "c")["sources"][0]["version"], 2);
    assert_eq!(count_items(doc), 6, "nothing dropped");

    // The unedited item updates in one action; the edited one waits and keeps its text.
    let (_, up) = api(addr, "POST", &p("/summary/update-unedited"), &cof_b, None).await;
    assert_eq!(up, json!({"updated": 1}));
    let (st, _) = api(
        addr,
        "POST",
        &p(&format!("/summary/items/{item_d}/resolve")),
        &cof_b,
        Some(json!({"action": "keep-mine"})),
    )
    .await;
    assert_eq!(st, 204);
    let item_b = item_citing(doc, 1, "b")["id"].as_str().unwrap().to_owned();
    let (st, _) = api(
        addr,
        "POST",
        &p(&format!("/summary/items/{item_b}/resolve")),
        &cof_a,
        Some(json!({"action": "keep-mine"})),
    )
    .await;
    assert_eq!(st, 204);
    let (_, s) = api(addr, "GET", &p("/summary"), &delegate, None).await;
    let doc = &s["document"];
    assert_eq!(
        item_citing(doc, 1, "a")["text"],
        "Guarantee access to justice and legal aid for all migrants"
    );
    let d = item_citing(doc, 1, "d");
    assert_eq!(
        d["text"],
        "Provide training: Train border officials on human rights"
    );
    assert_eq!(d["sources"][0]["version"], 2);
    assert!(d.get("stale").is_none());
    assert!(item_citing(doc, 1, "b").get("removedAtSource").is_none());

    // Consolidation: the remittance bullets of groups 1 and 2.
    let (_, clusters) = api(addr, "GET", &p("/summary/clusters"), &cof_a, None).await;
    let clusters = clusters.as_array().unwrap();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    let cid = clusters[0]["id"].as_str().unwrap();
    let (st, merged) = api(addr, "POST", &p(&format!("/summary/clusters/{cid}/merge")), &cof_a,
        Some(json!({"text": "Reduce the transaction costs of remittances to below 3 per cent by 2030"}))).await;
    assert_eq!(st, 200, "{merged}");
    let (_, s) = api(addr, "GET", &p("/summary"), &delegate, None).await;
    let c = item_citing(&s["document"], 2, "e");
    assert_eq!(c["id"], merged["itemId"]);
    assert_eq!(c["sources"].as_array().unwrap().len(), 2);
    assert_eq!(count_items(&s["document"]), 5);
    // The source bullets themselves are untouched.
    let (_, v1) = api(addr, "GET", &p("/groups/2/versions/1"), &delegate, None).await;
    assert_eq!(
        v1["outcome"]["sections"][0]["bullets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Sign-off: A approves; B's later edit voids it; both approve; issued and locked.
    let (_, st) = api(addr, "POST", &p("/summary/approve"), &cof_a, None).await;
    assert_eq!(st["state"], "drafting");
    assert_eq!(st["waitingFor"].as_array().unwrap().len(), 1);
    sb.sync_until(&mut pb, |r| count_items(&document_json(&r.doc, None)) == 5)
        .await;
    splice_preamble(&mut sb.doc, "Revised.");
    sb.sync_acked(&mut pb).await;
    let (_, st) = api(addr, "POST", &p("/summary/approve"), &cof_b, None).await;
    assert_eq!(st["state"], "drafting", "A approved other content");
    let (_, st) = api(addr, "POST", &p("/summary/approve"), &cof_a, None).await;
    assert_eq!(st["state"], "issued");
    assert_eq!(
        api(addr, "POST", &p("/summary/approve"), &delegate, None)
            .await
            .0,
        403
    );
    let (_, meeting) = api(addr, "GET", &p(""), &delegate, None).await;
    assert_eq!(meeting["summaryState"], "issued");
    // The issued summary refuses every write: REST and sync.
    assert_eq!(
        api(addr, "POST", &p("/summary/merge"), &cof_a, None)
            .await
            .0,
        409
    );
    sa.sync_until(&mut pa, |r| {
        document_json(&r.doc, None)["state"] == "issued"
    })
    .await;
    splice_preamble(&mut sa.doc, "Too late.");
    sa.push_unacked(&mut pa).await;
    assert!(pa.expect_error().await.contains("issued"));

    // Exports of the issued summary.
    let (st, md) = http(
        addr,
        "GET",
        &p("/summary/export?format=md"),
        &delegate,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let md = String::from_utf8(md).unwrap();
    assert!(md.contains("Original: English") && md.contains("## "));
    assert!(!md.contains("Too late."));
    let (_, j) = api(
        addr,
        "GET",
        &p("/summary/export?format=json"),
        &delegate,
        None,
    )
    .await;
    assert_eq!(j["provenance"].as_array().unwrap().len(), 5);
    let (st, docx) = http(
        addr,
        "GET",
        &p("/summary/export?format=docx"),
        &delegate,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let text = read_with_libreoffice(&docx, "summary");
    assert!(text.contains("Original: English"), "{text}");
    assert!(text.contains("Chair's summary of the stocktaking meeting"));
    let dimension = &rapporteur::meeting::MeetingFile::demo().groups[0].dimension;
    assert!(text.contains(dimension.as_str()), "a section heading");
    // Paragraphs numbered consecutively (two preamble paragraphs would be 1., 2.; the preamble
    // here is one paragraph), then the items.
    for n in 1..=6 {
        assert!(text.contains(&format!("{n}.\t")), "paragraph {n} in {text}");
    }
    assert!(text.contains("Annex"));

    // A new revision: drafting again; the issued one stays readable.
    let (_, rev) = api(addr, "POST", &p("/summary/revisions"), &cof_b, None).await;
    assert_eq!(rev, json!({"revision": 2, "state": "drafting"}));
    let (st, r1) = api(addr, "GET", &p("/summary/revisions/1"), &delegate, None).await;
    assert_eq!(st, 200);
    assert_eq!(
        r1["state"], "drafting",
        "frozen at the heads before the issuing change"
    );
    assert_eq!(count_items(&r1), 5);
    // (A's replica holds the refused change, which the server never takes: B edits.)
    sb.sync_until(&mut pb, |r| {
        document_json(&r.doc, None)["state"] == "drafting"
    })
    .await;
    splice_preamble(&mut sb.doc, " Second revision.");
    sb.sync_acked(&mut pb).await;
    let (_, diff) = api(addr, "GET", &p("/summary/diff?from=r1"), &delegate, None).await;
    let person_b = json!(server.person_id(&cof_b).await);
    assert!(diff["diff"]["authors"]
        .as_array()
        .unwrap()
        .contains(&person_b));

    // Group history: since the report-back (v1), by whom.
    let (_, diff) = api(
        addr,
        "GET",
        &p("/groups/1/diff?from=v1&to=v2"),
        &delegate,
        None,
    )
    .await;
    let diff = &diff["diff"];
    assert_eq!(diff["removed"][0]["id"], "b");
    let changed: Vec<&Value> = diff["changed"].as_array().unwrap().iter().collect();
    assert_eq!(changed.len(), 2);
    assert!(changed.iter().all(|c| c["by"] == json!([me1])));
    assert_eq!(diff["added"].as_array().unwrap().len(), 0);
    let (st, docx) = http(
        addr,
        "GET",
        &p("/groups/1/export?format=docx&version=v2"),
        &delegate,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let text = read_with_libreoffice(&docx, "group");
    assert!(text.contains("Outcome of action group 1"));
    assert!(text.contains("2.\tReduce the transaction costs"), "{text}");
    assert!(text.contains("3.\tTrain border officials on human rights and gender"));
    server.stop().await;
}

/// Converts a DOCX to plain text with LibreOffice (headless), the way a reader opens it.
fn read_with_libreoffice(docx: &[u8], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.docx"));
    std::fs::write(&file, docx).unwrap();
    let profile = format!(
        "-env:UserInstallation=file://{}/profile",
        dir.path().display()
    );
    let out = std::process::Command::new("soffice")
        .args([profile.as_str(), "--headless", "--convert-to", "txt:Text", "--outdir"])
        .arg(dir.path())
        .arg(&file)
        .output()
        .expect("LibreOffice (soffice) is needed to check the DOCX export: apt-get install libreoffice-writer-nogui");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.path().join(format!("{name}.txt")))
        .expect("LibreOffice wrote the text")
}

#[tokio::test]
async fn an_expired_co_facilitator_invite_does_not_hold_up_the_sign_off() {
    let server = TestServer::start().await;
    let addr = server.addr;
    server.revoke_existing_invites().await;
    let present = server.invite(Role::CoFacilitator, None).await;
    // An invite that lapsed: made to expire within zero hours, it is expired as soon as it exists.
    let lapsed = server
        .invite_expiring(Role::CoFacilitator, None, Some(0))
        .await;
    let (status, _) = api(addr, "POST", &p("/summary/approve"), &lapsed, None).await;
    assert_eq!(status, 401, "an expired invite signs nobody in");

    let (status, st) = api(addr, "POST", &p("/summary/approve"), &present, None).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["waitingFor"], json!([]), "{st}");
    assert_eq!(st["state"], "issued", "{st}");
}

//! Convergence, property-based: random concurrent edits by several editors, with random
//! disconnects, lost messages and server restarts; in the end every editor, the server and the
//! stored copy hold the same document, and no valid edit was ever refused.
//!
//! The many-case property runs sans-IO: the server is modelled by what its document actor
//! does with a sync message — `schema::accept` on a copy, store the new part, swap, receive,
//! answer — over an in-memory chunk list that a restart reloads. A smaller property runs the
//! same kind of scenario over real sockets against an in-process server.
//! `RAPPORTEUR_PROPTEST_CASES` scales both (`scripts/soak.sh` runs many more).

use std::collections::{HashMap, HashSet};

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ChangeHash, ObjId, ReadDoc, ROOT};
use proptest::prelude::*;
use rapporteur::docs::schema::{self, BulletIdentity};
use rapporteur::meeting::{MeetingFile, Role};
use rapporteur::store::DocKind;

use crate::forged::bullet_texts;
use crate::support::*;

fn cases(default: u32) -> u32 {
    std::env::var("RAPPORTEUR_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Debug)]
enum Edit {
    AddBullet { section: usize },
    Type { pick: usize, at_end: bool },
    SetStatus { pick: usize, status: usize },
    DeleteOwn { pick: usize },
}

#[derive(Clone, Debug)]
enum Step {
    Edit {
        peer: usize,
        edit: Edit,
    },
    /// One round trip between a peer and the server.
    Sync {
        peer: usize,
    },
    /// The peer's message is lost with its connection; both sides start a new session.
    Drop {
        peer: usize,
    },
    /// The server stores a peer's message, then dies before answering.
    CrashAfterStore {
        peer: usize,
    },
    Restart,
}

const PEERS: usize = 3;

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (0..3usize).prop_map(|section| Edit::AddBullet { section }),
        4 => (any::<usize>(), any::<bool>()).prop_map(|(pick, at_end)| Edit::Type { pick, at_end }),
        1 => (any::<usize>(), 0..3usize).prop_map(|(pick, status)| Edit::SetStatus { pick, status }),
        1 => any::<usize>().prop_map(|pick| Edit::DeleteOwn { pick }),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..PEERS, edit_strategy()).prop_map(|(peer, edit)| Step::Edit { peer, edit }),
        6 => (0..PEERS).prop_map(|peer| Step::Sync { peer }),
        1 => (0..PEERS).prop_map(|peer| Step::Drop { peer }),
        1 => (0..PEERS).prop_map(|peer| Step::CrashAfterStore { peer }),
        1 => Just(Step::Restart),
    ]
}

/// Every bullet of the document: (section list, index, bullet object).
fn bullets(doc: &Automerge) -> Vec<(ObjId, usize, ObjId)> {
    let mut out = Vec::new();
    let sections = doc.get(ROOT, "sections").unwrap().unwrap().1;
    for s in 0..doc.length(&sections) {
        let section = doc.get(&sections, s).unwrap().unwrap().1;
        let list = doc.get(&section, "bullets").unwrap().unwrap().1;
        for i in 0..doc.length(&list) {
            out.push((list.clone(), i, doc.get(&list, i).unwrap().unwrap().1));
        }
    }
    out
}

fn created_by(doc: &impl ReadDoc, bullet: &ObjId) -> String {
    doc.get(bullet, "createdBy")
        .unwrap()
        .and_then(|(v, _)| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Applies an edit the way an editor's client would; edits with no target do nothing.
fn apply(doc: &mut Automerge, person: &str, serial: u64, edit: &Edit) {
    let all = bullets(doc);
    doc.transact::<_, _, AutomergeError>(|tx| {
        match edit {
            Edit::AddBullet { section } => {
                let sections = tx.get(ROOT, "sections")?.unwrap().1;
                let s = tx.get(&sections, *section)?.unwrap().1;
                let list = tx.get(&s, "bullets")?.unwrap().1;
                let at = tx.length(&list);
                let b = tx.insert_object(&list, at, automerge::ObjType::Map)?;
                tx.put(&b, "id", format!("{person}-{serial}"))?;
                let t = tx.put_object(&b, "text", automerge::ObjType::Text)?;
                tx.splice_text(&t, 0, 0, &format!("Bullet {serial}"))?;
                tx.put_object(&b, "proposedBy", automerge::ObjType::List)?;
                tx.put_object(&b, "tags", automerge::ObjType::List)?;
                tx.put(&b, "status", "proposed")?;
                tx.put(&b, "createdBy", person)?;
                tx.put(&b, "createdAt", serial as i64)?;
            }
            Edit::Type { pick, at_end } if !all.is_empty() => {
                let (_, _, b) = &all[pick % all.len()];
                let t = tx.get(b, "text")?.unwrap().1;
                let at = if *at_end { tx.length(&t) } else { 0 };
                tx.splice_text(&t, at, 0, &format!(" w{serial}"))?;
            }
            Edit::SetStatus { pick, status } if !all.is_empty() => {
                let (_, _, b) = &all[pick % all.len()];
                tx.put(b, "status", ["proposed", "agreed", "bracketed"][*status])?;
            }
            Edit::DeleteOwn { pick } => {
                let own: Vec<_> = all
                    .iter()
                    .filter(|(_, _, b)| created_by(tx, b) == person)
                    .collect();
                if !own.is_empty() {
                    let (list, i, _) = own[pick % own.len()];
                    tx.delete(list, *i)?;
                }
            }
            _ => {}
        }
        Ok(())
    })
    .unwrap();
}

fn saved(state: &sync::State) -> sync::State {
    sync::State::decode(&state.encode()).unwrap()
}

/// What the server does, without I/O.
struct Server {
    doc: Automerge,
    stored: Vec<Vec<u8>>,
    states: Vec<sync::State>,
    identities: Option<HashMap<String, BulletIdentity>>,
    refused: HashSet<ChangeHash>,
    owners: schema::ActorOwners,
}

impl Server {
    fn new(initial: Vec<u8>) -> Self {
        let doc = Automerge::load(&initial).unwrap();
        Self {
            doc,
            stored: vec![initial],
            states: (0..PEERS).map(|_| sync::State::new()).collect(),
            identities: None,
            refused: HashSet::new(),
            owners: schema::ActorOwners::new(),
        }
    }

    fn load_stored(&self) -> Automerge {
        let mut doc = Automerge::new();
        for chunk in &self.stored {
            doc.load_incremental(chunk).unwrap();
        }
        doc
    }

    /// Checks, stores and takes in one message. A refusal fails the property: every edit in
    /// these scenarios is one an editor may make.
    fn receive(&mut self, peer: usize, person: &str, msg: sync::Message) -> Result<(), String> {
        if !msg.changes.is_empty() {
            let accepted = schema::accept(
                DocKind::Group(1),
                &self.doc,
                &msg.changes,
                &schema::Writer {
                    person,
                    owners: &self.owners,
                },
                &mut self.identities,
                &mut self.refused,
            );
            match accepted {
                Ok(Some(schema::Accepted {
                    doc: next,
                    new_actors,
                })) => {
                    for actor in new_actors {
                        self.owners.insert(actor, person.to_owned());
                    }
                    self.stored.push(next.save_after(&self.doc.get_heads()));
                    self.doc = next;
                }
                Ok(None) => {}
                Err(refusal) => return Err(format!("a valid edit was refused: {refusal}")),
            }
        }
        self.doc
            .receive_sync_message(&mut self.states[peer], msg)
            .map_err(|e| e.to_string())
    }

    fn restart(&mut self) {
        self.doc = self.load_stored();
        self.states = (0..PEERS).map(|_| sync::State::new()).collect();
        self.identities = None;
        self.refused.clear();
    }
}

struct Client {
    person: String,
    doc: Automerge,
    state: sync::State,
    serial: u64,
}

fn sorted(mut v: Vec<ChangeHash>) -> Vec<ChangeHash> {
    v.sort();
    v
}

fn outcome_bytes() -> Vec<u8> {
    let meeting = MeetingFile::demo();
    rapporteur::docs::init::group_outcome(&meeting, &meeting.groups[0]).unwrap()
}

/// Runs one scenario; `Err` names the broken promise.
fn run_in_memory(steps: &[Step]) -> Result<(), String> {
    let initial = outcome_bytes();
    let mut server = Server::new(initial.clone());
    let mut clients: Vec<Client> = (0..PEERS)
        .map(|i| Client {
            person: format!("p-{i}"),
            // Every editor starts from the document it fetched once.
            doc: Automerge::load(&initial).unwrap(),
            state: sync::State::new(),
            serial: 0,
        })
        .collect();
    let reconnect = |server: &mut Server, c: &mut Client, peer: usize| {
        c.state = saved(&c.state);
        server.states[peer] = sync::State::new();
    };
    for step in steps {
        match step {
            Step::Edit { peer, edit } => {
                let c = &mut clients[*peer];
                c.serial += 1;
                apply(&mut c.doc, &c.person.clone(), c.serial, edit);
            }
            Step::Sync { peer } => {
                let c = &mut clients[*peer];
                if let Some(msg) = c.doc.generate_sync_message(&mut c.state) {
                    server.receive(*peer, &c.person, msg)?;
                }
                if let Some(reply) = server.doc.generate_sync_message(&mut server.states[*peer]) {
                    c.doc
                        .receive_sync_message(&mut c.state, reply)
                        .map_err(|e| e.to_string())?;
                }
            }
            Step::Drop { peer } => {
                let c = &mut clients[*peer];
                let _lost = c.doc.generate_sync_message(&mut c.state);
                reconnect(&mut server, c, *peer);
            }
            Step::CrashAfterStore { peer } => {
                let c = &mut clients[*peer];
                if let Some(msg) = c.doc.generate_sync_message(&mut c.state) {
                    server.receive(*peer, &c.person, msg)?;
                }
                server.restart();
                for c in clients.iter_mut() {
                    c.state = saved(&c.state);
                }
            }
            Step::Restart => {
                server.restart();
                for c in clients.iter_mut() {
                    c.state = saved(&c.state);
                }
            }
        }
    }
    // Everyone reconnects and syncs until nothing is left to say (bounded).
    for (peer, c) in clients.iter_mut().enumerate() {
        reconnect(&mut server, c, peer);
    }
    for _ in 0..50 {
        let mut quiet = true;
        for (peer, c) in clients.iter_mut().enumerate() {
            if let Some(msg) = c.doc.generate_sync_message(&mut c.state) {
                quiet = false;
                server.receive(peer, &c.person, msg)?;
            }
            if let Some(reply) = server.doc.generate_sync_message(&mut server.states[peer]) {
                quiet = false;
                c.doc
                    .receive_sync_message(&mut c.state, reply)
                    .map_err(|e| e.to_string())?;
            }
        }
        if quiet {
            break;
        }
    }
    let heads = sorted(server.doc.get_heads());
    let stored = server.load_stored();
    if sorted(stored.get_heads()) != heads {
        return Err("the stored copy differs from the server's".into());
    }
    let json = rapporteur::docs::json::document_json(&stored, None);
    for (i, c) in clients.iter().enumerate() {
        if sorted(c.doc.get_heads()) != heads {
            return Err(format!("editor {i} did not converge"));
        }
        if rapporteur::docs::json::document_json(&c.doc, None) != json {
            return Err(format!("editor {i} reads a different document"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn editors_server_and_store_converge_in_memory(
        steps in proptest::collection::vec(step_strategy(), 1..60)
    ) {
        if let Err(broken) = run_in_memory(&steps) {
            prop_assert!(false, "{}", broken);
        }
    }
}

#[derive(Clone, Debug)]
enum NetStep {
    Edit {
        peer: usize,
        edit: Edit,
    },
    /// Syncs until the server acknowledged the peer's changes.
    Sync {
        peer: usize,
    },
    /// The connection drops; the peer comes back with its saved sync state.
    Reconnect {
        peer: usize,
    },
    Restart,
}

fn net_step_strategy() -> impl Strategy<Value = NetStep> {
    prop_oneof![
        4 => (0..PEERS, edit_strategy()).prop_map(|(peer, edit)| NetStep::Edit { peer, edit }),
        3 => (0..PEERS).prop_map(|peer| NetStep::Sync { peer }),
        1 => (0..PEERS).prop_map(|peer| NetStep::Reconnect { peer }),
        1 => Just(NetStep::Restart),
    ]
}

async fn run_over_sockets(steps: Vec<NetStep>) {
    let mut server = TestServer::start().await;
    let doc = server.group_doc(1).await;
    let mut tokens = Vec::new();
    let mut editors = Vec::new();
    for _ in 0..PEERS {
        let token = server.invite(Role::Rapporteur, Some(1)).await;
        let person = server.person_id(&token).await;
        let mut peer = Peer::join(&server.ws_url(&token)).await;
        let replica = Replica::fetch(&mut peer, &doc).await;
        tokens.push((token, person));
        editors.push((Some(peer), replica, 0u64));
    }
    for step in steps {
        match step {
            NetStep::Edit { peer, edit } => {
                let (_, replica, serial) = &mut editors[peer];
                *serial += 1;
                apply(&mut replica.doc, &tokens[peer].1, *serial, &edit);
            }
            NetStep::Sync { peer } => {
                let (conn, replica, _) = &mut editors[peer];
                let conn = match conn {
                    Some(c) => c,
                    None => conn.insert(Peer::join(&server.ws_url(&tokens[peer].0)).await),
                };
                replica.sync_acked(conn).await;
            }
            NetStep::Reconnect { peer } => {
                let (conn, replica, _) = &mut editors[peer];
                *conn = None;
                replica.state = saved(&replica.state);
                replica.server_heads.clear();
            }
            NetStep::Restart => {
                let dir = server.stop().await;
                server = TestServer::start_in(dir).await;
                for (conn, replica, _) in editors.iter_mut() {
                    *conn = None;
                    replica.state = saved(&replica.state);
                    replica.server_heads.clear();
                }
            }
        }
    }
    // Twice round: first every editor's changes reach the server, then everyone catches up.
    for _ in 0..2 {
        for (i, (conn, replica, _)) in editors.iter_mut().enumerate() {
            *conn = None;
            replica.state = saved(&replica.state);
            replica.server_heads.clear();
            let mut peer = Peer::join(&server.ws_url(&tokens[i].0)).await;
            replica
                .sync_until(&mut peer, |r| {
                    !r.server_heads.is_empty()
                        && sorted(r.doc.get_heads()) == sorted(r.server_heads.clone())
                })
                .await;
        }
    }
    let heads = sorted(editors[0].1.doc.get_heads());
    for (_, replica, _) in &editors {
        assert_eq!(sorted(replica.doc.get_heads()), heads);
    }
    // The stored copy, read by a fresh client after a restart.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir).await;
    let mut peer = Peer::join(&server.ws_url(&tokens[0].0)).await;
    let fresh = Replica::fetch(&mut peer, &doc).await;
    assert_eq!(sorted(fresh.doc.get_heads()), heads);
    assert_eq!(bullet_texts(&fresh.doc), bullet_texts(&editors[0].1.doc));
    server.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(64) / 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn editors_converge_over_real_sockets(
        steps in proptest::collection::vec(net_step_strategy(), 1..16)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_over_sockets(steps));
    }
}

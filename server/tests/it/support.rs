//! A test peer speaking the automerge-repo wire protocol with tokio-tungstenite, and helpers
//! to run a server in-process (on port 0) or as the real binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ChangeHash};
use ciborium::Value;
use futures_util::{SinkExt, StreamExt};
use rapporteur::admin::{self, NewInvite};
use rapporteur::meeting::Role;
use rapporteur::store::Store;
use rapporteur::{AppState, Settings};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);
pub const SLUG: &str = rapporteur::meeting::DEMO_SLUG;

/// How to start a `TestServer`.
#[derive(Default)]
pub struct Options {
    pub limits: rapporteur::sync::limits::Limits,
    /// Document unload and compaction thresholds.
    pub docs: rapporteur::docs::DocsConfig,
    #[allow(clippy::type_complexity)]
    pub wrap_store: Option<Box<dyn FnOnce(Arc<dyn Store>) -> Arc<dyn Store> + Send>>,
    /// Another database than the temporary SQLite file (a PostgreSQL URL).
    pub database_url: Option<String>,
}

/// A server running in this process on a temporary SQLite file.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The server's state: its store, metrics, and document registry (to reach a document
    /// without a socket).
    pub state: AppState,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> Self {
        Self::start_with(dir, Options::default()).await
    }

    /// A server whose connections may each send `messages_per_sec`, in bursts of `burst`.
    pub async fn start_with_message_limit(messages_per_sec: f64, burst: f64) -> Self {
        let limits = rapporteur::sync::limits::Limits {
            messages_per_sec,
            message_burst: burst,
            ..Default::default()
        };
        let options = Options {
            limits,
            ..Options::default()
        };
        Self::start_with(tempfile::tempdir().unwrap(), options).await
    }

    /// A server with other limits, or with its store wrapped (to inject faults).
    pub async fn start_with(dir: tempfile::TempDir, options: Options) -> Self {
        let url = options
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("test.db").display()));
        let store = rapporteur::store::open(&url).await.unwrap();
        let store = match options.wrap_store {
            Some(wrap) => wrap(store),
            None => store,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let public_url = format!("http://{addr}");
        admin::bootstrap_demo(store.as_ref(), &public_url)
            .await
            .unwrap();
        let settings = Settings {
            public_url,
            web_dir: dir.path().join("web"),
            docs: options.docs,
            limits: options.limits,
        };
        let state = AppState::new(store.clone(), settings).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(rapporteur::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        let task = tokio::spawn(async move {
            task.await.unwrap().unwrap();
        });
        Self {
            addr,
            state,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop; returns the directory so that a new server can start on the same file.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        self.dir
    }

    /// Revokes every invite the meeting has so far (the demo's own), so that the co-facilitators
    /// the sign-off waits for are those the test invites.
    pub async fn revoke_existing_invites(&self) {
        for invite in self.state.store.invites(SLUG).await.unwrap() {
            self.state.store.revoke_invite(&invite.id, 1).await.unwrap();
        }
    }

    pub async fn invite(&self, role: Role, group: Option<u32>) -> String {
        self.invite_expiring(role, group, None).await
    }

    /// An invite that expires `hours` after it is made (`Some(0)`: at once); its token.
    pub async fn invite_expiring(
        &self,
        role: Role,
        group: Option<u32>,
        hours: Option<u32>,
    ) -> String {
        let new = NewInvite {
            meeting: SLUG.into(),
            role,
            group,
            name: format!("{} {}", role.as_str(), group.unwrap_or(0)),
            expires_in_hours: hours,
        };
        let (_, url) = admin::create_invite(self.state.store.as_ref(), "http://x", new)
            .await
            .unwrap();
        url.rsplit('/').next().unwrap().to_owned()
    }

    pub async fn group_doc(&self, n: u32) -> String {
        let groups = self.state.store.groups(SLUG).await.unwrap();
        groups
            .iter()
            .find(|g| g.number == n)
            .unwrap()
            .doc
            .as_str()
            .to_owned()
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/sync?token={token}", self.addr)
    }

    pub async fn person_id(&self, token: &str) -> String {
        rapporteur::auth::person_for_token(self.state.store.as_ref(), token)
            .await
            .unwrap()
            .id
            .0
    }
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

pub fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

pub fn field_text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    field(v, key)?.as_text()
}

/// What a peer can observe.
#[derive(Debug)]
pub enum Event {
    Message(Value),
    Closed,
}

pub struct Peer {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

impl Peer {
    /// Connects without joining.
    pub async fn connect_raw(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        Self {
            ws,
            id: format!("peer-{}", uuid::Uuid::new_v4()),
        }
    }

    /// Connects and joins, or `None` if the server is not there (it may have just died).
    pub async fn try_join(url: &str) -> Option<Self> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .ok()?
            .ok()?;
        let mut peer = Self {
            ws,
            id: format!("peer-{}", uuid::Uuid::new_v4()),
        };
        let join = map(vec![
            ("type", text("join")),
            ("senderId", text(&peer.id)),
            ("peerMetadata", Value::Map(vec![])),
            ("supportedProtocolVersions", Value::Array(vec![text("1")])),
        ]);
        peer.send(&join).await;
        match peer.try_next(WAIT).await? {
            Some(m) if field_text(&m, "type") == Some("peer") => Some(peer),
            _ => None,
        }
    }

    /// The next message within `wait`: `None` if none came in time, `Some(None)` if the
    /// connection ended (or the frame was not CBOR).
    pub async fn try_next(&mut self, wait: Duration) -> Option<Option<Value>> {
        loop {
            let msg = tokio::time::timeout(wait, self.ws.next()).await.ok()?;
            match msg {
                Some(Ok(Message::Binary(b))) => {
                    return Some(ciborium::de::from_reader(b.as_ref()).ok())
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Some(None),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Connects and joins; waits for the server's `peer` reply.
    pub async fn join(url: &str) -> Self {
        let mut peer = Self::connect_raw(url).await;
        let join = map(vec![
            ("type", text("join")),
            ("senderId", text(&peer.id)),
            ("peerMetadata", Value::Map(vec![])),
            ("supportedProtocolVersions", Value::Array(vec![text("1")])),
        ]);
        peer.send(&join).await;
        match peer.next().await {
            Event::Message(m) => assert_eq!(field_text(&m, "type"), Some("peer"), "{m:?}"),
            Event::Closed => panic!("closed instead of peer"),
        }
        peer
    }

    pub async fn send(&mut self, v: &Value) {
        self.send_bytes(encode(v)).await;
    }

    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        let _ = self.ws.send(Message::Binary(bytes.into())).await;
    }

    /// The next protocol message, or `Closed`. Panics after `WAIT`.
    pub async fn next(&mut self) -> Event {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no message from the server in time");
            match msg {
                Some(Ok(Message::Binary(b))) => {
                    return Event::Message(ciborium::de::from_reader(b.as_ref()).unwrap())
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Event::Closed,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Waits for an `error` message and returns its text.
    pub async fn expect_error(&mut self) -> String {
        loop {
            match self.next().await {
                Event::Message(m) if field_text(&m, "type") == Some("error") => {
                    return field_text(&m, "message").unwrap().to_owned()
                }
                Event::Message(_) => continue,
                Event::Closed => panic!("closed without an error message"),
            }
        }
    }

    /// Waits until the server closes the connection.
    pub async fn expect_closed(&mut self) {
        loop {
            if let Event::Closed = self.next().await {
                return;
            }
        }
    }

    pub async fn send_sync(&mut self, doc: &str, kind: &str, data: Vec<u8>) {
        let msg = map(vec![
            ("type", text(kind)),
            ("senderId", text(&self.id.clone())),
            ("targetId", text("server")),
            ("documentId", text(doc)),
            ("data", Value::Bytes(data)),
        ]);
        self.send(&msg).await;
    }
}

/// A peer's copy of one document, synced through a `Peer`.
pub struct Replica {
    pub doc_id: String,
    pub doc: Automerge,
    pub state: sync::State,
    /// The server's heads as of its last sync message: what it has acknowledged.
    pub server_heads: Vec<ChangeHash>,
}

impl Replica {
    pub fn new(doc_id: &str) -> Self {
        Self {
            doc_id: doc_id.to_owned(),
            doc: Automerge::new(),
            state: sync::State::new(),
            server_heads: Vec::new(),
        }
    }

    /// Sends whatever the sync protocol says to send now.
    pub async fn push(&mut self, peer: &mut Peer) {
        if let Some(msg) = self.doc.generate_sync_message(&mut self.state) {
            let kind = if self.doc.get_heads().is_empty() {
                "request"
            } else {
                "sync"
            };
            peer.send_sync(&self.doc_id, kind, msg.encode()).await;
        }
    }

    /// Sends every local change the server has not acknowledged, whatever the sync state says.
    /// For a change the server is expected to refuse: the sync protocol may hold a change back
    /// for a round (after a Bloom filter false positive, about one time in a hundred), and a
    /// test that only waits for the refusal never runs that round.
    pub async fn push_unacked(&mut self, peer: &mut Peer) {
        let changes: Vec<Vec<u8>> = self
            .doc
            .get_changes(&self.server_heads)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let msg = carrying(self.doc.get_heads(), changes);
        peer.send_sync(&self.doc_id, "sync", msg).await;
    }

    fn receive(&mut self, data: &[u8]) {
        let msg = sync::Message::decode(data).unwrap();
        self.server_heads = msg.heads.clone();
        self.doc.receive_sync_message(&mut self.state, msg).unwrap();
    }

    /// Syncs until `done` holds for this replica; errors from the server fail the test.
    pub async fn sync_until(&mut self, peer: &mut Peer, done: impl Fn(&Replica) -> bool) {
        if let Err(e) = self.try_sync_until(peer, done).await {
            panic!("server error: {e}");
        }
    }

    /// Syncs until `done` holds for this replica, or until the server sends an error, which is
    /// returned.
    pub async fn try_sync_until(
        &mut self,
        peer: &mut Peer,
        done: impl Fn(&Replica) -> bool,
    ) -> Result<(), String> {
        self.push(peer).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "sync did not finish in time"
            );
            match peer.next().await {
                Event::Message(m) => match field_text(&m, "type") {
                    Some("sync") if field_text(&m, "documentId") == Some(&self.doc_id) => {
                        let Some(Value::Bytes(data)) = field(&m, "data") else {
                            panic!()
                        };
                        self.receive(data);
                        self.push(peer).await;
                    }
                    Some("error") => {
                        return Err(field_text(&m, "message").unwrap_or_default().to_owned())
                    }
                    _ => {}
                },
                Event::Closed => panic!("connection closed while syncing"),
            }
        }
        Ok(())
    }

    /// Fetches the document until it has content.
    pub async fn fetch(peer: &mut Peer, doc_id: &str) -> Self {
        let mut r = Self::new(doc_id);
        r.sync_until(peer, |r| !r.doc.get_heads().is_empty()).await;
        r
    }

    /// Syncs until the server acknowledged every local change.
    pub async fn sync_acked(&mut self, peer: &mut Peer) {
        if let Err(e) = self.try_sync_acked(peer).await {
            panic!("server error: {e}");
        }
    }

    /// Syncs until the server acknowledged every local change, or returns its error.
    pub async fn try_sync_acked(&mut self, peer: &mut Peer) -> Result<(), String> {
        self.try_sync_until(peer, |r| r.acknowledged()).await
    }

    /// Whether the server's last sync message acknowledged every local change.
    pub fn acknowledged(&self) -> bool {
        let mine = self.doc.get_heads();
        mine.iter().all(|h| self.server_heads.contains(h))
    }
}

/// An encoded sync message that carries exactly `chunks` (changes, or anything a hostile client
/// might send as one), whatever a sync state would say to send.
pub fn carrying(heads: Vec<ChangeHash>, chunks: Vec<Vec<u8>>) -> Vec<u8> {
    sync::Message {
        heads,
        need: vec![],
        have: vec![],
        changes: sync::ChunkList::from(chunks),
        flags: None,
        version: sync::MessageVersion::V1,
    }
    .encode()
}

pub async fn http_status(addr: SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

//! One WebSocket connection: the protocol state machine of a single peer.
//!
//! The peer must `join` first; the server answers `peer` at once. After that every message must
//! carry the joined peer id as its sender. `sync`/`request` and `ephemeral` go to the document's
//! actor if the person may read the document, `doc-unavailable` otherwise. Malformed frames and
//! protocol violations get an `error` and end the connection; they never affect other peers.
//!
//! Backpressure: outbound frames go through a bounded queue; a peer that lets it fill is
//! disconnected and resyncs when it reconnects. A write to a peer that stopped reading can
//! block; it is abandoned as soon as the connection is closed, so a stuck peer never keeps its
//! task (and its place among the document's peers) alive.
//!
//! Flooding: each connection has a token bucket (`limits`); a peer that sends faster than it
//! allows gets an `error` and is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::time::{interval, Instant, MissedTickBehavior};

use super::limits::TokenBucket;
use super::protocol::{ClientMessage, ServerMessage, PROTOCOL_V1};
use crate::auth::Person;
use crate::docs::{Access, DocCommand, DocError, DocHandle, Outbox, PeerLink};
use crate::ids::{DocId, PeerId};
use crate::state::AppState;

/// Largest frame accepted from a client.
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// Outbound frames queued per connection before it counts as too slow.
const OUTBOX_CAPACITY: usize = 4096;
/// Most queued frames written with one flush.
const FRAMES_PER_FLUSH: usize = 64;
const PING_EVERY: Duration = Duration::from_secs(15);
/// A peer silent for this long (no pong, no message) is dropped.
const DEAD_AFTER: Duration = Duration::from_secs(45);
/// How long the closing handshake may take before the socket is simply dropped: a peer that
/// stopped reading would otherwise hold the task forever.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What to do after a frame.
enum Next {
    Continue,
    Close(&'static str),
}

struct Connection {
    state: AppState,
    person: Arc<Person>,
    conn: u64,
    outbox: Outbox,
    peer: Option<Arc<PeerLink>>,
    /// The documents this peer has named, by their ids as it writes them: one lookup per
    /// message.
    docs: HashMap<String, Followed>,
}

/// A document a peer has named, and its access to it.
struct Followed {
    id: DocId,
    handle: DocHandle,
    access: Access,
}

pub async fn run(socket: WebSocket, state: AppState, person: Arc<Person>) {
    let close = state.shutdown.child_token();
    let conn = state.connections.register(&person.id, close.clone());
    let metrics = state.metrics.clone();
    metrics
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let span =
        tracing::info_span!("connection", conn, person = %person.id, role = person.role.as_str());
    let (outbox, mut outgoing) = Outbox::new(OUTBOX_CAPACITY, close.clone(), metrics.clone());
    let mut c = Connection {
        state: state.clone(),
        person: person.clone(),
        conn,
        outbox,
        peer: None,
        docs: HashMap::new(),
    };
    let (mut sink, mut stream) = socket.split();
    let mut ping = interval(PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let limits = &state.settings.limits;
    let mut bucket = TokenBucket::new(
        limits.messages_per_sec,
        limits.message_burst,
        std::time::Instant::now(),
    );
    let reason: &'static str = {
        let _enter = span.enter();
        tracing::debug!("connected");
        drop(_enter);
        loop {
            tokio::select! {
                biased;
                _ = close.cancelled() => break "closed by the server",
                frame = outgoing.recv() => {
                    let Some(frame) = frame else { break "closed" };
                    tokio::select! {
                        sent = send_queued(&mut sink, frame, &mut outgoing) => {
                            if sent.is_err() {
                                break "send failed";
                            }
                        }
                        _ = close.cancelled() => break "closed by the server while sending",
                    }
                }
                incoming = stream.next() => {
                    last_heard = Instant::now();
                    let counted = matches!(&incoming, Some(Ok(m)) if !matches!(m, Message::Close(_)));
                    bucket.refund(c.outbox.take_new_changes());
                    if counted && !bucket.take(std::time::Instant::now()) {
                        metrics.rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        c.send_error("too many messages; slow down and reconnect");
                        close_with(&mut outgoing, &mut sink, 1008, "too many messages").await;
                        break "too many messages";
                    }
                    match incoming {
                        None => break "the peer went away",
                        Some(Err(err)) => {
                            tracing::debug!(parent: &span, error = %err, "websocket error");
                            if is_capacity(&err) {
                                c.send_error("frame too large");
                                close_with(&mut outgoing, &mut sink, 1009, "frame too large").await;
                            }
                            break "websocket error";
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            metrics.messages_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if let Next::Close(why) = c.on_frame(&bytes).instrument_in(&span).await {
                                close_with(&mut outgoing, &mut sink, 1008, why).await;
                                break why;
                            }
                        }
                        Some(Ok(Message::Text(_))) => {
                            c.send_error("the protocol uses binary frames only");
                        }
                        Some(Ok(Message::Close(_))) => break "closed by the peer",
                        Some(Ok(_)) => {} // ping / pong
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > DEAD_AFTER {
                        break "no answer to keepalive pings";
                    }
                    tokio::select! {
                        sent = sink.send(Message::Ping(Vec::new().into())) => {
                            if sent.is_err() {
                                break "send failed";
                            }
                        }
                        _ = close.cancelled() => break "closed by the server while sending",
                    }
                }
            }
        }
    };
    tracing::debug!(parent: &span, reason, "disconnected");
    // Once per document, however many ways the peer wrote its id.
    let followed: HashMap<DocId, DocHandle> =
        c.docs.drain().map(|(_, f)| (f.id, f.handle)).collect();
    for (id, handle) in followed {
        if handle.send(DocCommand::Leave { conn }).await.is_err() {
            tracing::trace!(doc = %id, "document already unloaded");
        }
    }
    // The closing handshake: our close frame, then read (and drop) until the peer's close or
    // EOF. Closing the socket with unread input makes the kernel reset the connection, and the
    // peer would lose the `error` just sent (a flooding client always has unread input).
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        let _ = sink.close().await;
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    state.connections.unregister(&person.id, conn);
    metrics
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

fn is_capacity(err: &axum::Error) -> bool {
    let text = err.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Capacity")
}

/// Writes `first` and whatever else is queued, with one flush (one system call) for all of
/// them: a viewer follows seven documents, and their fan-outs often queue frames for it at
/// the same time. Bounded, so that a busy connection still notices pings and closing.
async fn send_queued(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    first: Vec<u8>,
    outgoing: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> Result<(), axum::Error> {
    sink.feed(Message::Binary(first.into())).await?;
    for _ in 1..FRAMES_PER_FLUSH {
        let Ok(frame) = outgoing.try_recv() else {
            break;
        };
        sink.feed(Message::Binary(frame.into())).await?;
    }
    sink.flush().await
}

/// Writes whatever is queued (an error message) and a close frame, within `CLOSE_GRACE`: the
/// peer may have stopped reading.
async fn close_with(
    outgoing: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    code: u16,
    reason: &str,
) {
    let closing = async {
        while let Ok(frame) = outgoing.try_recv() {
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, closing).await;
}

trait InstrumentIn: std::future::Future + Sized {
    fn instrument_in(self, span: &tracing::Span) -> tracing::instrument::Instrumented<Self> {
        tracing::Instrument::instrument(self, span.clone())
    }
}
impl<F: std::future::Future> InstrumentIn for F {}

impl Connection {
    fn server_peer(&self) -> &PeerId {
        &self.state.docs.server().peer_id
    }

    fn target(&self) -> PeerId {
        self.peer
            .as_ref()
            .map(|p| p.peer_id.clone())
            .unwrap_or_else(|| PeerId("unknown".into()))
    }

    fn send_error(&self, message: &str) {
        let target = self.target();
        self.outbox.send(
            ServerMessage::Error {
                sender: self.server_peer(),
                target: &target,
                message,
                doc: None,
            }
            .encode(),
        );
    }

    async fn on_frame(&mut self, bytes: &[u8]) -> Next {
        let msg = match ClientMessage::decode(bytes) {
            Ok(msg) => msg,
            Err(err) => {
                self.send_error(&format!("malformed message: {err}"));
                return Next::Close("malformed message");
            }
        };
        if let ClientMessage::Join { sender, versions } = &msg {
            return self.on_join(sender, versions.as_deref());
        }
        let Some(peer) = self.peer.clone() else {
            self.send_error("send `join` first");
            return Next::Close("message before join");
        };
        if msg.sender() != &peer.peer_id {
            if matches!(msg, ClientMessage::Ephemeral { .. }) {
                // automerge-repo peers gossip ephemeral messages on, keeping the original
                // sender: this is one the server relayed to this peer. Already delivered.
                return Next::Continue;
            }
            self.send_error("senderId does not match the peer id this connection joined with");
            return Next::Close("forged sender id");
        }
        match msg {
            ClientMessage::Sync { doc, data, .. } => {
                let sent = self
                    .dispatch(&doc.raw, |access| DocCommand::Sync {
                        link: peer,
                        access,
                        data,
                    })
                    .await;
                if !sent {
                    self.unavailable(&doc.raw);
                }
            }
            ClientMessage::Ephemeral {
                doc,
                count,
                session,
                data,
                ..
            } => {
                self.dispatch(&doc.raw, |access| DocCommand::Ephemeral {
                    link: peer,
                    access,
                    count,
                    session,
                    data,
                })
                .await;
            }
            ClientMessage::Leave { .. } => return Next::Close("the peer left"),
            ClientMessage::DocUnavailable { .. } | ClientMessage::Gossip { .. } => {}
            ClientMessage::Join { .. } => unreachable!("handled above"),
        }
        Next::Continue
    }

    fn on_join(&mut self, sender: &PeerId, versions: Option<&[String]>) -> Next {
        if versions.is_some_and(|v| !v.iter().any(|v| v == PROTOCOL_V1)) {
            self.send_error("unsupported protocol version");
            return Next::Close("unsupported protocol version");
        }
        if let Some(existing) = &self.peer {
            if &existing.peer_id != sender {
                self.send_error("a connection joins once, with one peer id");
                return Next::Close("second join with another peer id");
            }
        } else {
            self.peer = Some(Arc::new(PeerLink {
                conn: self.conn,
                peer_id: sender.clone(),
                person: self.person.clone(),
                outbox: self.outbox.clone(),
            }));
        }
        let server = self.state.docs.server();
        self.outbox.send(
            ServerMessage::Peer {
                sender: &server.peer_id,
                target: sender,
                storage_id: &server.storage_id,
            }
            .encode(),
        );
        Next::Continue
    }

    /// Sends the document this peer names `raw` the command `cmd` makes with this person's
    /// access to it. Returns false, sending nothing, if there is no such document or they may
    /// not read it.
    async fn dispatch(&mut self, raw: &str, cmd: impl FnOnce(Access) -> DocCommand) -> bool {
        let followed = match self.docs.get_mut(raw) {
            Some(followed) => followed,
            None => {
                let Some(followed) = self.follow(raw).await else {
                    return false;
                };
                self.docs.entry(raw.to_owned()).or_insert(followed)
            }
        };
        if let Err(cmd) = followed.handle.send(cmd(followed.access)).await {
            // The document was unloaded in between: load it again.
            match self.state.docs.send(&followed.id, cmd).await {
                Ok(handle) => followed.handle = handle,
                Err(err) => {
                    tracing::error!(doc = %followed.id, error = %err, "could not reach a document");
                }
            }
        }
        true
    }

    /// The document this peer names `raw`, loaded, if there is one and this person may read it.
    async fn follow(&self, raw: &str) -> Option<Followed> {
        let id = DocId::parse(raw)?;
        let handle = match self.state.docs.get(&id).await {
            Ok(handle) => handle,
            Err(DocError::Unknown) => return None,
            Err(err) => {
                tracing::error!(doc = %id, error = %err, "could not load a document");
                return None;
            }
        };
        let access = self.person.access(&handle.record)?;
        Some(Followed { id, handle, access })
    }

    fn unavailable(&self, raw: &str) {
        let target = self.target();
        self.outbox.send(
            ServerMessage::DocUnavailable {
                sender: self.server_peer(),
                target: &target,
                doc: raw,
            }
            .encode(),
        );
    }
}

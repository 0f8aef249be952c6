//! The automerge-repo 2.x WebSocket protocol from the client's side: one CBOR map per binary
//! frame, `join` answered by `peer`, then `request`/`sync` carrying Automerge sync messages.
//!
//! Only what a following or typing client needs; decoding tolerates what `cbor-x` writes
//! (tagged byte arrays, `undefined`), so the same client works against the stock server.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use ciborium::Value;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a client receives, reduced to what the load generator acts on.
pub enum Incoming {
    Sync { doc: String, data: Vec<u8> },
    Error(String),
    Other,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn encode(entries: Vec<(&str, Value)>) -> Vec<u8> {
    let map = Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect());
    let mut out = Vec::with_capacity(128);
    ciborium::ser::into_writer(&map, &mut out).expect("writing to a Vec cannot fail");
    out
}

fn field<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

pub fn decode(bytes: &[u8]) -> Incoming {
    let Ok(Value::Map(entries)) = ciborium::de::from_reader::<Value, _>(bytes) else {
        return Incoming::Other;
    };
    let kind = field(&entries, "type").and_then(Value::as_text);
    match kind {
        Some("sync") | Some("request") => {
            let doc = field(&entries, "documentId").and_then(Value::as_text);
            let data = match field(&entries, "data") {
                Some(Value::Bytes(b)) => Some(b.clone()),
                Some(Value::Tag(64, inner)) => inner.as_bytes().cloned(),
                _ => None,
            };
            match (doc, data) {
                (Some(doc), Some(data)) => Incoming::Sync {
                    doc: doc.to_owned(),
                    data,
                },
                _ => Incoming::Other,
            }
        }
        Some("error") => Incoming::Error(
            field(&entries, "message")
                .and_then(Value::as_text)
                .unwrap_or("error without a message")
                .to_owned(),
        ),
        _ => Incoming::Other,
    }
}

/// One joined connection: the write half, the read half, and both peer ids.
pub struct Conn {
    pub sink: SplitSink<Ws, Message>,
    pub stream: SplitStream<Ws>,
    pub me: String,
    pub server: String,
}

impl Conn {
    /// Opens the WebSocket, sends `join` and waits for `peer`.
    pub async fn join(url: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(30),
            // As browsers do: no Nagle delay. And a small read buffer: tungstenite zeroes
            // the free part of it before every read (128 KiB by default).
            tokio_tungstenite::connect_async_with_config(
                url,
                Some(WebSocketConfig::default().read_buffer_size(8 * 1024)),
                true,
            ),
        )
        .await
        .context("connecting timed out")?
        .with_context(|| format!("connecting to {}", redact(url)))?;
        let (mut sink, mut stream) = ws.split();
        let me = format!("loadgen-{}", uuid::Uuid::new_v4().simple());
        let join = encode(vec![
            ("type", text("join")),
            ("senderId", text(&me)),
            ("peerMetadata", Value::Map(vec![])),
            ("supportedProtocolVersions", Value::Array(vec![text("1")])),
        ]);
        sink.send(Message::Binary(join.into())).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let frame = tokio::time::timeout_at(deadline, stream.next())
                .await
                .context("no `peer` reply in time")?
                .ok_or_else(|| anyhow!("closed before `peer`"))??;
            let Message::Binary(bytes) = frame else {
                continue;
            };
            let Ok(Value::Map(entries)) = ciborium::de::from_reader::<Value, _>(bytes.as_ref())
            else {
                bail!("malformed frame before `peer`");
            };
            match field(&entries, "type").and_then(Value::as_text) {
                Some("peer") => {
                    let server = field(&entries, "senderId")
                        .and_then(Value::as_text)
                        .ok_or_else(|| anyhow!("`peer` without senderId"))?
                        .to_owned();
                    return Ok(Self {
                        sink,
                        stream,
                        me,
                        server,
                    });
                }
                Some("error") => bail!("server refused join: {:?}", field(&entries, "message")),
                _ => continue,
            }
        }
    }

    /// Frame for a `request` (we hold nothing yet) or `sync` message.
    pub fn sync_frame(&self, kind: &str, doc: &str, data: Vec<u8>) -> Vec<u8> {
        encode(vec![
            ("type", text(kind)),
            ("senderId", text(&self.me)),
            ("targetId", text(&self.server)),
            ("documentId", text(doc)),
            ("data", Value::Bytes(data)),
        ])
    }

    pub async fn send(&mut self, frame: Vec<u8>) -> anyhow::Result<()> {
        self.sink.send(Message::Binary(frame.into())).await?;
        Ok(())
    }

    /// Queues a frame without writing it out.
    pub async fn feed(&mut self, frame: Vec<u8>) -> anyhow::Result<()> {
        self.sink.feed(Message::Binary(frame.into())).await?;
        Ok(())
    }

    /// Writes out the frames `feed` queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.sink.flush().await?;
        Ok(())
    }

    /// The next binary frame, `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        next_binary(&mut self.stream).await
    }
}

/// The next binary frame of `stream`, `None` once the connection is gone.
pub async fn next_binary(stream: &mut SplitStream<Ws>) -> Option<Vec<u8>> {
    loop {
        match stream.next().await? {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// A URL for logs: tokens are secrets.
pub fn redact(url: &str) -> String {
    match url.find("token=") {
        Some(i) => format!("{}token=…", &url[..i]),
        None => url.to_owned(),
    }
}

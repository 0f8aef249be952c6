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
#[derive(Debug, PartialEq, Eq)]
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

/// Decodes a frame. The shape servers send (a map of definite length, text keys, the
/// sync payload as a byte string, tagged or not) is read in place; anything else goes
/// through a general CBOR value tree. A thousand viewers decode every frame on the cores
/// the server runs on, and building the tree was a tenth of this process's time.
pub fn decode(bytes: &[u8]) -> Incoming {
    quick::decode(bytes).unwrap_or_else(|| decode_general(bytes))
}

/// `decode` through a general CBOR value tree: any encoding of the same message.
fn decode_general(bytes: &[u8]) -> Incoming {
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
        quick::sync_frame(kind, &self.me, &self.server, doc, &data)
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

/// CBOR as the protocol's messages use it, read and written without a value tree (RFC 8949:
/// an item starts with its major type in the top three bits and an argument in the rest).
/// The generator keeps its own codec rather than the server's: an instrument that shared the
/// server's encoder would not notice the server's mistakes.
mod quick {
    use super::Incoming;

    /// The head of an item: major type and argument (a length, for strings and maps).
    fn head(bytes: &[u8], at: &mut usize) -> Option<(u8, u64)> {
        let first = *bytes.get(*at)?;
        *at += 1;
        let info = first & 0x1f;
        let size = match info {
            0..=23 => return Some((first >> 5, u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            // Indefinite lengths and reserved values: left to the general decoder.
            _ => return None,
        };
        let arg = bytes.get(*at..*at + size)?;
        *at += size;
        Some((
            first >> 5,
            arg.iter().fold(0, |n, b| n << 8 | u64::from(*b)),
        ))
    }

    /// A byte or text string's content.
    fn string<'a>(bytes: &'a [u8], at: &mut usize, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok()?;
        let end = at.checked_add(len)?;
        let content = bytes.get(*at..end)?;
        *at = end;
        Some(content)
    }

    /// One value: a text string, a byte string (bare or as a `Uint8Array`, tag 64), or
    /// a number or simple value, skipped.
    enum Field<'a> {
        Text(&'a str),
        Bytes(&'a [u8]),
        Other,
    }

    fn field<'a>(bytes: &'a [u8], at: &mut usize) -> Option<Field<'a>> {
        let info = *bytes.get(*at)? & 0x1f;
        let (major, arg) = head(bytes, at)?;
        match major {
            0 | 1 => Some(Field::Other),
            // false, true, null, undefined and floats (not the unassigned simple values).
            7 if matches!(info, 20..=23 | 25..=27) => Some(Field::Other),
            2 => string(bytes, at, arg).map(Field::Bytes),
            3 => std::str::from_utf8(string(bytes, at, arg)?)
                .ok()
                .map(Field::Text),
            6 if arg == 64 => match head(bytes, at)? {
                (2, len) => string(bytes, at, len).map(Field::Bytes),
                _ => None,
            },
            // Arrays, maps and other tags (`peerMetadata`, say): the general decoder.
            _ => None,
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Incoming> {
        let mut at = 0;
        let (5, entries) = head(bytes, &mut at)? else {
            return None;
        };
        let (mut kind, mut doc, mut data, mut message) = (None, None, None, None);
        for _ in 0..entries {
            let Field::Text(key) = field(bytes, &mut at)? else {
                return None;
            };
            // A key given twice means its first value, as in the general decoder.
            match (key, field(bytes, &mut at)?) {
                ("type", Field::Text(t)) => _ = kind.get_or_insert(t),
                ("documentId", Field::Text(t)) => _ = doc.get_or_insert(t),
                ("message", Field::Text(t)) => _ = message.get_or_insert(t),
                ("data", Field::Bytes(b)) => _ = data.get_or_insert(b),
                ("type" | "documentId" | "message" | "data", _) => return None,
                _ => {}
            }
        }
        if at != bytes.len() {
            return None;
        }
        Some(match kind {
            Some("sync" | "request") => match (doc, data) {
                (Some(doc), Some(data)) => Incoming::Sync {
                    doc: doc.to_owned(),
                    data: data.to_vec(),
                },
                _ => Incoming::Other,
            },
            Some("error") => {
                Incoming::Error(message.unwrap_or("error without a message").to_owned())
            }
            _ => Incoming::Other,
        })
    }

    fn put_head(out: &mut Vec<u8>, major: u8, arg: usize) {
        let major = major << 5;
        match arg {
            0..=23 => out.push(major | arg as u8),
            24..=0xff => out.extend_from_slice(&[major | 24, arg as u8]),
            0x100..=0xffff => {
                out.push(major | 25);
                out.extend_from_slice(&(arg as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(major | 26);
                out.extend_from_slice(&(arg as u32).to_be_bytes());
            }
            _ => {
                out.push(major | 27);
                out.extend_from_slice(&(arg as u64).to_be_bytes());
            }
        }
    }

    fn put_text(out: &mut Vec<u8>, text: &str) {
        put_head(out, 3, text.len());
        out.extend_from_slice(text.as_bytes());
    }

    /// A `sync` or `request` message: the same bytes as the general encoder writes.
    pub fn sync_frame(kind: &str, me: &str, server: &str, doc: &str, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + me.len() + server.len() + doc.len() + data.len());
        put_head(&mut out, 5, 5);
        for (key, value) in [
            ("type", kind),
            ("senderId", me),
            ("targetId", server),
            ("documentId", doc),
        ] {
            put_text(&mut out, key);
            put_text(&mut out, value);
        }
        put_text(&mut out, "data");
        put_head(&mut out, 2, data.len());
        out.extend_from_slice(data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general_frame(kind: &str, data: Vec<u8>) -> Vec<u8> {
        encode(vec![
            ("type", text(kind)),
            ("senderId", text("loadgen-1")),
            ("targetId", text("server")),
            ("documentId", text("2x7Qv")),
            ("data", Value::Bytes(data)),
        ])
    }

    #[test]
    fn frames_are_written_as_the_general_encoder_writes_them() {
        for len in [0, 1, 23, 24, 255, 256, 65_535, 65_536, 100_000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(
                quick::sync_frame("sync", "loadgen-1", "server", "2x7Qv", &data),
                general_frame("sync", data),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn frames_read_in_place_read_as_the_general_decoder_reads_them() {
        let tagged = {
            let map = Value::Map(vec![
                (text("type"), text("sync")),
                (text("documentId"), text("2x7Qv")),
                (
                    text("data"),
                    Value::Tag(64, Box::new(Value::Bytes(vec![1, 2, 3]))),
                ),
                (text("peerMetadata"), Value::Map(vec![])),
            ]);
            let mut out = Vec::new();
            ciborium::ser::into_writer(&map, &mut out).unwrap();
            out
        };
        let error = encode(vec![
            ("type", text("error")),
            ("message", text("no")),
            ("count", Value::Integer(3.into())),
        ]);
        let frames = [
            general_frame("sync", vec![0x42; 300]),
            general_frame("request", Vec::new()),
            general_frame("ephemeral", vec![1]),
            tagged,
            error,
        ];
        for frame in &frames {
            assert_eq!(decode(frame), decode_general(frame));
            // Every truncation and every flipped bit: the same answer either way.
            for end in 0..frame.len() {
                assert_eq!(decode(&frame[..end]), decode_general(&frame[..end]));
            }
            for i in 0..frame.len() * 8 {
                let mut bent = frame.clone();
                bent[i / 8] ^= 1 << (i % 8);
                assert_eq!(
                    decode(&bent),
                    decode_general(&bent),
                    "bit {i} of {frame:02x?}"
                );
            }
        }
    }
}

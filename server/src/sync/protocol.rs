//! The `automerge-repo` 2.x WebSocket wire protocol: one CBOR map per binary frame.
//!
//! Decoding is written against what `cbor-x` (the JavaScript client's encoder) produces:
//! definite and indefinite maps, `undefined` for absent values, byte strings (optionally tagged
//! as a typed array) for `data`, and integers that may arrive as floats. Everything a client
//! sends is untrusted: sizes are bounded and any shape we do not expect is an error, never a
//! panic.

use ciborium::Value;

use crate::ids::{DocId, PeerId};

/// The only protocol version of the WebSocket adapter.
pub const PROTOCOL_V1: &str = "1";

/// Longest peer id, session id or message type we accept.
const MAX_ID_LEN: usize = 256;

#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    Join {
        sender: PeerId,
        versions: Option<Vec<String>>,
    },
    /// `sync` and `request` are handled alike: both carry an Automerge sync message.
    Sync {
        sender: PeerId,
        doc: DocRef,
        data: Vec<u8>,
    },
    Ephemeral {
        sender: PeerId,
        doc: DocRef,
        count: u64,
        session: String,
        data: Vec<u8>,
    },
    DocUnavailable {
        sender: PeerId,
    },
    Leave {
        sender: PeerId,
    },
    /// Remote-heads gossip (`remote-subscription-change`, `remote-heads-changed`): valid, and
    /// not needed by a server that is the authority for its documents.
    Gossip {
        sender: PeerId,
    },
}

/// A document id as the client wrote it, kept raw for the reply if it is not well formed.
/// Parsed on demand (`id`): the parse checks a base58 checksum, and a connection that knows
/// the raw id already need not pay that on every message.
#[derive(Debug, PartialEq, Clone)]
pub struct DocRef {
    pub raw: String,
}

impl DocRef {
    pub fn id(&self) -> Option<DocId> {
        DocId::parse(&self.raw)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("malformed CBOR")]
    Cbor,
    #[error("a message must be a CBOR map")]
    NotAMap,
    #[error("missing or invalid field `{0}`")]
    Field(&'static str),
    #[error("unknown message type `{0}`")]
    UnknownType(String),
}

impl ClientMessage {
    pub fn sender(&self) -> &PeerId {
        match self {
            ClientMessage::Join { sender, .. }
            | ClientMessage::Sync { sender, .. }
            | ClientMessage::Ephemeral { sender, .. }
            | ClientMessage::DocUnavailable { sender }
            | ClientMessage::Leave { sender }
            | ClientMessage::Gossip { sender } => sender,
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match quick::entries(bytes) {
            Some(entries) => Self::from_fields(&Fields(&entries)),
            None => Self::decode_general(bytes),
        }
    }

    /// `decode` through a general CBOR decoder, whatever the shape: what `decode` does with
    /// input its quick reader (`quick`) leaves alone, and what the tests compare that with.
    pub fn decode_general(bytes: &[u8]) -> Result<Self, DecodeError> {
        let value: Value = ciborium::de::from_reader(bytes).map_err(|_| DecodeError::Cbor)?;
        let Value::Map(entries) = value else {
            return Err(DecodeError::NotAMap);
        };
        let entries: Vec<(&str, Item<'_>)> = entries
            .iter()
            .filter_map(|(k, v)| Some((k.as_text()?, Item::from_value(v))))
            .collect();
        Self::from_fields(&Fields(&entries))
    }

    fn from_fields(fields: &Fields<'_, '_>) -> Result<Self, DecodeError> {
        let kind = fields.text("type")?;
        let sender = || fields.text("senderId").map(|s| PeerId(s.to_owned()));
        let doc = || {
            Ok::<_, DecodeError>(DocRef {
                raw: fields.text("documentId")?.to_owned(),
            })
        };
        Ok(match kind {
            "join" => ClientMessage::Join {
                sender: sender()?,
                versions: fields.string_list("supportedProtocolVersions")?,
            },
            "sync" | "request" => ClientMessage::Sync {
                sender: sender()?,
                doc: doc()?,
                data: fields.bytes("data")?,
            },
            "ephemeral" => ClientMessage::Ephemeral {
                sender: sender()?,
                doc: doc()?,
                count: fields.uint("count")?,
                session: fields.text("sessionId")?.to_owned(),
                data: fields.bytes("data")?,
            },
            "doc-unavailable" => ClientMessage::DocUnavailable { sender: sender()? },
            "leave" => ClientMessage::Leave { sender: sender()? },
            "remote-subscription-change" | "remote-heads-changed" => {
                ClientMessage::Gossip { sender: sender()? }
            }
            other => return Err(DecodeError::UnknownType(truncate(other))),
        })
    }
}

/// Largest bits-per-entry or probe count accepted in a peer's Bloom filter. Automerge writes 10
/// and 7.
const MAX_BLOOM_PARAMETER: u64 = 64;

/// Checks what automerge trusts in a decoded sync message: the parameters of each Bloom filter.
/// (The changes it carries are checked by `super::chunks`, once the sender may write.)
/// A filter with entries but no bits makes automerge divide by zero, and one asking for
/// billions of probes makes it allocate gigabytes: either would take the document's actor (or
/// the process) down for every peer. Found by fuzzing `accept`.
pub fn check_sync_message(msg: &automerge::sync::Message) -> Result<(), &'static str> {
    const BAD: &str = "malformed Bloom filter in sync message";
    for have in &msg.have {
        // The filter's fields are private; its wire form is three LEB128 numbers and the bits.
        let bytes = have.bloom.to_bytes();
        let mut input = bytes.as_slice();
        let mut next = || leb128_u64(&mut input).ok_or(BAD);
        if bytes.is_empty() {
            continue; // an empty filter: automerge never probes it
        }
        let _entries = next()?;
        let bits_per_entry = next()?;
        let probes = next()?;
        let valid = |n: u64| (1..=MAX_BLOOM_PARAMETER).contains(&n);
        if !valid(bits_per_entry) || !valid(probes) || input.is_empty() {
            return Err(BAD);
        }
    }
    Ok(())
}

fn leb128_u64(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A value of a message's map, as far as decoding needs to tell values apart; borrowed from
/// the frame (`quick`) or from a decoded `ciborium::Value`.
#[derive(Debug)]
enum Item<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
    Uint(u64),
    Float(f64),
    Array(Vec<Item<'a>>),
    /// `null`, or `undefined` (cbor-x writes it for absent optional values): as if absent.
    Null,
    Other,
}

impl<'a> Item<'a> {
    fn from_value(value: &'a Value) -> Self {
        match value {
            Value::Text(s) => Item::Text(s),
            Value::Bytes(b) => Item::Bytes(b),
            // cbor-x may tag typed arrays (tag 64: uint8 array).
            Value::Tag(64, inner) => match inner.as_ref() {
                Value::Bytes(b) => Item::Bytes(b),
                _ => Item::Other,
            },
            Value::Integer(i) => u64::try_from(*i).map_or(Item::Other, Item::Uint),
            Value::Float(f) => Item::Float(*f),
            Value::Array(items) => Item::Array(items.iter().map(Item::from_value).collect()),
            Value::Null => Item::Null,
            _ => Item::Other,
        }
    }
}

/// A message's map entries with text keys, in order.
struct Fields<'e, 'a>(&'e [(&'a str, Item<'a>)]);

impl<'a> Fields<'_, 'a> {
    /// The first entry with this key, unless it is null or undefined.
    fn get(&self, key: &str) -> Option<&Item<'a>> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Item::Null))
    }

    fn text(&self, key: &'static str) -> Result<&'a str, DecodeError> {
        match self.get(key) {
            Some(Item::Text(s)) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(s),
            _ => Err(DecodeError::Field(key)),
        }
    }

    fn bytes(&self, key: &'static str) -> Result<Vec<u8>, DecodeError> {
        match self.get(key) {
            Some(Item::Bytes(b)) => Ok(b.to_vec()),
            _ => Err(DecodeError::Field(key)),
        }
    }

    fn uint(&self, key: &'static str) -> Result<u64, DecodeError> {
        match self.get(key) {
            Some(Item::Uint(n)) => Ok(*n),
            // JavaScript numbers may be written as float64.
            Some(Item::Float(f)) if f.fract() == 0.0 && *f >= 0.0 && *f <= 9.007e15 => {
                Ok(*f as u64)
            }
            _ => Err(DecodeError::Field(key)),
        }
    }

    fn string_list(&self, key: &'static str) -> Result<Option<Vec<String>>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Item::Array(items)) if items.len() <= 16 => items
                .iter()
                .map(|v| match v {
                    Item::Text(s) if s.len() <= MAX_ID_LEN => Ok((*s).to_owned()),
                    _ => Err(DecodeError::Field(key)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(DecodeError::Field(key)),
        }
    }
}

/// A reader for the shape every client sends: one definite-length map of text keys to text,
/// byte strings (tagged as a typed array or not), unsigned integers, `null`/`undefined` and
/// arrays of those, with nothing after it. It reads the frame in place, where decoding through
/// `ciborium::Value` built a tree of owned values for every frame (a tenth of the server's time
/// with a thousand viewers acknowledging every change). Anything else, including anything
/// malformed, it leaves to the general decoder (`ClientMessage::decode_general`), so both
/// decode every input the same way; the tests and the fuzz target check that.
mod quick {
    use super::Item;

    /// Most entries, and array items, read here; larger ones go to the general decoder.
    const MAX_ITEMS: u64 = 64;

    pub(super) fn entries(bytes: &[u8]) -> Option<Vec<(&str, Item<'_>)>> {
        let mut r = Reader(bytes);
        let (major, len) = r.head()?;
        if major != 5 || len > MAX_ITEMS {
            return None;
        }
        let mut entries = Vec::with_capacity(len as usize);
        for _ in 0..len {
            let (major, len) = r.head()?;
            if major != 3 {
                return None;
            }
            let key = std::str::from_utf8(r.take(len)?).ok()?;
            entries.push((key, r.item(true)?));
        }
        r.0.is_empty().then_some(entries)
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn byte(&mut self) -> Option<u8> {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            Some(b)
        }

        fn take(&mut self, len: u64) -> Option<&'a [u8]> {
            let len = usize::try_from(len).ok()?;
            if len > self.0.len() {
                return None;
            }
            let (taken, rest) = self.0.split_at(len);
            self.0 = rest;
            Some(taken)
        }

        /// A data item's major type and argument; `None` for indefinite lengths and the
        /// reserved argument encodings.
        fn head(&mut self) -> Option<(u8, u64)> {
            let b = self.byte()?;
            let (major, info) = (b >> 5, b & 0x1f);
            let arg = match info {
                0..=23 => u64::from(info),
                24 => u64::from(self.byte()?),
                25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
                26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
                27 => u64::from_be_bytes(self.take(8)?.try_into().ok()?),
                _ => return None,
            };
            Some((major, arg))
        }

        fn item(&mut self, arrays: bool) -> Option<Item<'a>> {
            // `null` and `undefined`: one byte each.
            if let Some(0xf6 | 0xf7) = self.0.first() {
                self.0 = &self.0[1..];
                return Some(Item::Null);
            }
            let (major, arg) = self.head()?;
            Some(match major {
                0 => Item::Uint(arg),
                2 => Item::Bytes(self.take(arg)?),
                3 => Item::Text(std::str::from_utf8(self.take(arg)?).ok()?),
                4 if arrays && arg <= MAX_ITEMS => {
                    let mut items = Vec::with_capacity(arg as usize);
                    for _ in 0..arg {
                        items.push(self.item(false)?);
                    }
                    Item::Array(items)
                }
                6 if arg == 64 => match self.head()? {
                    (2, len) => Item::Bytes(self.take(len)?),
                    _ => return None,
                },
                _ => return None,
            })
        }
    }
}

/// Messages the server sends. Encoded once per recipient (the target id differs).
pub enum ServerMessage<'a> {
    Peer {
        sender: &'a PeerId,
        target: &'a PeerId,
        storage_id: &'a str,
    },
    Sync {
        sender: &'a PeerId,
        target: &'a PeerId,
        doc: &'a str,
        data: &'a [u8],
    },
    DocUnavailable {
        sender: &'a PeerId,
        target: &'a PeerId,
        doc: &'a str,
    },
    Ephemeral {
        sender: &'a PeerId,
        target: &'a PeerId,
        doc: &'a str,
        count: u64,
        session: &'a str,
        data: &'a [u8],
    },
    /// `doc` names the document when the error is about one (an extra key stock clients
    /// ignore).
    Error {
        sender: &'a PeerId,
        target: &'a PeerId,
        message: &'a str,
        doc: Option<&'a str>,
    },
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

impl ServerMessage<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut map: Vec<(Value, Value)> = Vec::with_capacity(7);
        let mut put = |k: &str, v: Value| map.push((text(k), v));
        match self {
            ServerMessage::Peer {
                sender,
                target,
                storage_id,
            } => {
                put("type", text("peer"));
                put("senderId", text(&sender.0));
                put("targetId", text(&target.0));
                put("selectedProtocolVersion", text(PROTOCOL_V1));
                put(
                    "peerMetadata",
                    Value::Map(vec![
                        (text("storageId"), text(storage_id)),
                        (text("isEphemeral"), Value::Bool(false)),
                    ]),
                );
            }
            ServerMessage::Sync {
                sender,
                target,
                doc,
                data,
            } => {
                put("type", text("sync"));
                put("senderId", text(&sender.0));
                put("targetId", text(&target.0));
                put("documentId", text(doc));
                put("data", Value::Bytes(data.to_vec()));
            }
            ServerMessage::DocUnavailable {
                sender,
                target,
                doc,
            } => {
                put("type", text("doc-unavailable"));
                put("senderId", text(&sender.0));
                put("targetId", text(&target.0));
                put("documentId", text(doc));
            }
            ServerMessage::Ephemeral {
                sender,
                target,
                doc,
                count,
                session,
                data,
            } => {
                put("type", text("ephemeral"));
                put("senderId", text(&sender.0));
                put("targetId", text(&target.0));
                put("documentId", text(doc));
                put("count", Value::Integer((*count).into()));
                put("sessionId", text(session));
                put("data", Value::Bytes(data.to_vec()));
            }
            ServerMessage::Error {
                sender,
                target,
                message,
                doc,
            } => {
                put("type", text("error"));
                put("senderId", text(&sender.0));
                put("targetId", text(&target.0));
                put("message", text(message));
                if let Some(doc) = doc {
                    put("documentId", text(doc));
                }
            }
        }
        let mut out = Vec::new();
        ciborium::ser::into_writer(&Value::Map(map), &mut out)
            .expect("writing to a Vec cannot fail");
        out
    }
}

/// A `sync` frame going to many peers: everything but `targetId` is encoded once, and each
/// peer's frame is that prefix plus its own `targetId` entry (CBOR maps are unordered). Fan-out
/// to a thousand viewers then costs a thousand copies, not a thousand encodings.
pub struct SyncFrame {
    prefix: Vec<u8>,
}

impl SyncFrame {
    pub fn new(sender: &PeerId, doc: &str, data: &[u8]) -> Self {
        let mut prefix = Vec::with_capacity(data.len() + sender.0.len() + doc.len() + 48);
        cbor_head(&mut prefix, 5, 5); // a map of five entries, the last one added per peer
        cbor_text(&mut prefix, "type");
        cbor_text(&mut prefix, "sync");
        cbor_text(&mut prefix, "senderId");
        cbor_text(&mut prefix, &sender.0);
        cbor_text(&mut prefix, "documentId");
        cbor_text(&mut prefix, doc);
        cbor_text(&mut prefix, "data");
        cbor_head(&mut prefix, 2, data.len() as u64);
        prefix.extend_from_slice(data);
        Self { prefix }
    }

    pub fn for_target(&self, target: &PeerId) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + target.0.len() + 12);
        out.extend_from_slice(&self.prefix);
        cbor_text(&mut out, "targetId");
        cbor_text(&mut out, &target.0);
        out
    }
}

/// A CBOR item head: major type and length, in the shortest form.
fn cbor_head(out: &mut Vec<u8>, major: u8, len: u64) {
    let m = major << 5;
    match len {
        0..=23 => out.push(m | len as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, len as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloom_filters_that_would_crash_automerge_are_refused() {
        use automerge::sync::Message;
        // One `have` whose filter has one entry and the given parameters and bits; no changes.
        let message = |bloom: &[u8]| {
            let mut m = vec![0x42, 0, 0, 1, 0, bloom.len() as u8];
            m.extend_from_slice(bloom);
            m.push(0);
            Message::decode(&m).expect("automerge reads it")
        };
        let ok = message(&[1, 10, 7, 0xff, 0x03]);
        assert_eq!(check_sync_message(&ok), Ok(()));
        // Zero bits per entry: a division by zero in automerge.
        assert!(check_sync_message(&message(&[1, 0, 7])).is_err());
        // Four billion probes: a 16 GB allocation.
        let huge = [1, 10, 0x80, 0xd0, 0xac, 0xf3, 0x0e, 0xff, 0x03];
        assert!(check_sync_message(&message(&huge)).is_err());
        // Messages without filters, as a first request sends, pass.
        let mut state = automerge::sync::State::new();
        let first = automerge::sync::SyncDoc::generate_sync_message(
            &automerge::Automerge::new(),
            &mut state,
        )
        .unwrap();
        assert_eq!(check_sync_message(&first), Ok(()));
    }

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).unwrap();
        out
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
    }

    /// Frames the quick reader reads and frames it leaves to the general decoder (indefinite
    /// lengths, floats, nested maps, trailing bytes, `undefined`, duplicate keys, non-minimal
    /// lengths), and every truncation and bit flip of them: both ways give the same result.
    #[test]
    fn the_quick_reader_decodes_as_the_general_decoder_does() {
        let sync = map(vec![
            ("type", text("sync")),
            ("senderId", text("peer-1")),
            ("targetId", text("server")),
            ("documentId", text("4Ynf7rPx6QdSMVKYcEGmvgdsr6BU")),
            ("data", Value::Bytes(vec![0x42, 1, 2, 3])),
        ]);
        let ephemeral = map(vec![
            ("type", text("ephemeral")),
            ("senderId", text("peer-1")),
            ("documentId", text("4Ynf7rPx6QdSMVKYcEGmvgdsr6BU")),
            ("count", Value::Float(7.0)),
            ("sessionId", text("s")),
            ("data", Value::Tag(64, Box::new(Value::Bytes(vec![9; 40])))),
        ]);
        let tagged = map(vec![
            ("type", text("request")),
            ("senderId", text("peer-2")),
            ("documentId", text("doc")),
            (
                "data",
                Value::Tag(64, Box::new(Value::Bytes(vec![0x42; 300]))),
            ),
            ("extra", Value::Null),
        ]);
        let join = map(vec![
            ("type", text("join")),
            ("senderId", text("p1")),
            ("supportedProtocolVersions", Value::Array(vec![text("1")])),
        ]);
        let mut frames: Vec<Vec<u8>> = [&sync, &ephemeral, &tagged, &join]
            .iter()
            .map(|v| encode(v))
            .collect();
        // `undefined` (0xf7) for a value; trailing bytes; an indefinite-length map; a
        // non-minimal length; a duplicate key (the first counts).
        let mut undefined = encode(&sync);
        let at = undefined.len() - 5;
        undefined.truncate(at - 6);
        undefined.extend([0x64, b'd', b'a', b't', b'a', 0xf7]);
        frames.push(undefined);
        let mut trailing = encode(&sync);
        trailing.push(0);
        frames.push(trailing);
        let mut indefinite = encode(&join);
        indefinite[0] = 0xbf;
        indefinite.push(0xff);
        frames.push(indefinite);
        frames.push(vec![
            0xa1, 0x78, 4, b't', b'y', b'p', b'e', 0x64, b'l', b'e', b'a', b'v',
        ]);
        frames.push(vec![
            0xa2, 0x64, b't', b'y', b'p', b'e', 0x65, b'l', b'e', b'a', b'v', b'e', 0x64, b't',
            b'y', b'p', b'e', 0x64, b'j', b'o', b'i', b'n',
        ]);
        let mut quick = 0;
        let mut checked = 0;
        for frame in &frames {
            let mut variants = vec![frame.clone()];
            for cut in 0..frame.len() {
                variants.push(frame[..cut].to_vec());
            }
            for byte in 0..frame.len().min(64) {
                for bit in 0..8 {
                    let mut flipped = frame.clone();
                    flipped[byte] ^= 1 << bit;
                    variants.push(flipped);
                }
            }
            for v in variants {
                quick += usize::from(quick::entries(&v).is_some());
                assert_eq!(
                    ClientMessage::decode(&v),
                    ClientMessage::decode_general(&v),
                    "{v:02x?}"
                );
                checked += 1;
            }
        }
        assert!(quick > 100 && checked > 2 * quick, "{quick} of {checked}");
        // The frames clients send every moment take the quick path.
        assert!(quick::entries(&encode(&sync)).is_some());
        assert!(quick::entries(&encode(&tagged)).is_some());
    }

    #[test]
    fn join_as_the_js_client_writes_it() {
        // cbor-x output for {type:"join", senderId:"p1", peerMetadata:{}, supportedProtocolVersions:["1"]}
        // written with a map16 header (0xb9) as cbor-x does for records.
        let mut bytes = vec![0xb9, 0x00, 0x04];
        for (k, v) in [
            ("type", text("join")),
            ("senderId", text("p1")),
            ("peerMetadata", Value::Map(vec![])),
            ("supportedProtocolVersions", Value::Array(vec![text("1")])),
        ] {
            bytes.extend(encode(&text(k)));
            bytes.extend(encode(&v));
        }
        assert_eq!(
            ClientMessage::decode(&bytes).unwrap(),
            ClientMessage::Join {
                sender: PeerId("p1".into()),
                versions: Some(vec!["1".into()])
            }
        );
    }

    #[test]
    fn undefined_and_float_counts_are_accepted() {
        let doc = DocId::random();
        let mut bytes = encode(&map(vec![
            ("type", text("ephemeral")),
            ("senderId", text("p1")),
            ("targetId", text("server")),
            ("documentId", text(doc.as_str())),
            ("count", Value::Float(3.0)),
            ("sessionId", text("s")),
            ("data", Value::Bytes(vec![0xa0])),
        ]));
        // And an extra key whose value is `undefined` (0xf7): ignored.
        bytes[0] += 1;
        bytes.extend(encode(&text("extra")));
        bytes.push(0xf7);
        match ClientMessage::decode(&bytes).unwrap() {
            ClientMessage::Ephemeral { count, doc: d, .. } => {
                assert_eq!(count, 3);
                assert_eq!(d.id(), Some(doc));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(ClientMessage::decode(&[0xff, 0x00]), Err(DecodeError::Cbor));
        assert_eq!(
            ClientMessage::decode(&encode(&text("x"))),
            Err(DecodeError::NotAMap)
        );
        let no_data = encode(&map(vec![
            ("type", text("sync")),
            ("senderId", text("p")),
            ("documentId", text("d")),
        ]));
        assert_eq!(
            ClientMessage::decode(&no_data),
            Err(DecodeError::Field("data"))
        );
        let unknown = encode(&map(vec![("type", text("boom")), ("senderId", text("p"))]));
        assert!(matches!(
            ClientMessage::decode(&unknown),
            Err(DecodeError::UnknownType(_))
        ));
        // Deep nesting is refused by the decoder's recursion limit, not by a stack overflow.
        let deep = vec![0x81; 100_000];
        assert!(ClientMessage::decode(&deep).is_err());
    }

    #[test]
    fn server_messages_round_trip_through_a_generic_decoder() {
        let me = PeerId("server".into());
        let you = PeerId("client".into());
        let bytes = ServerMessage::Sync {
            sender: &me,
            target: &you,
            doc: "abc",
            data: &[1, 2, 3],
        }
        .encode();
        let v: Value = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        let Value::Map(m) = v else { panic!() };
        let entries: Vec<(&str, Item<'_>)> = m
            .iter()
            .map(|(k, v)| (k.as_text().unwrap(), Item::from_value(v)))
            .collect();
        let f = Fields(&entries);
        assert_eq!(f.text("type").unwrap(), "sync");
        assert_eq!(f.bytes("data").unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn a_shared_sync_frame_decodes_as_the_per_peer_encoding() {
        let me = PeerId("server".into());
        let doc = "4NMNnkMhL8jXrdJ9jamS2z3Fzhpm";
        for size in [0usize, 23, 24, 255, 256, 70_000] {
            let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let frame = SyncFrame::new(&me, doc, &data);
            for target in ["c", "loadgen-0123456789abcdef0123456789abcdef"] {
                let you = PeerId(target.into());
                let shared: Value =
                    ciborium::de::from_reader(frame.for_target(&you).as_slice()).unwrap();
                let single: Value = ciborium::de::from_reader(
                    ServerMessage::Sync {
                        sender: &me,
                        target: &you,
                        doc,
                        data: &data,
                    }
                    .encode()
                    .as_slice(),
                )
                .unwrap();
                let (Value::Map(mut a), Value::Map(mut b)) = (shared, single) else {
                    panic!("not maps")
                };
                let key = |e: &(Value, Value)| e.0.as_text().unwrap().to_owned();
                a.sort_by_key(key);
                b.sort_by_key(key);
                assert_eq!(a, b, "size {size}, target {target}");
            }
        }
    }
}

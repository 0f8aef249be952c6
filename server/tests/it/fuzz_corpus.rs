//! The fuzz targets' committed corpus, replayed as ordinary tests: every input in
//! `fuzz/corpus/<target>/` runs through the same harness as under libFuzzer
//! (`fuzz/harness.rs`), so a crash the fuzzer once found stays fixed without cargo-fuzz.
//!
//! `write_fuzz_seeds` (ignored; `cargo test -p rapporteur --test it write_fuzz_seeds --
//! --ignored`) regenerates the outcome fixture and the seed inputs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use automerge::sync::{self, ChunkList, Message, MessageVersion, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ReadDoc, ROOT};
use ciborium::Value;
use rapporteur::docs::schema;
use rapporteur::meeting::MeetingFile;
use rapporteur::store::DocKind;

use crate::forged::add_bullet;
use crate::support::{encode, map, text};

#[path = "../../../fuzz/harness.rs"]
mod harness;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_decode_corpus_replays() {
    let inputs = corpus("decode");
    assert!(inputs.len() >= 5, "the decode corpus is missing");
    for (_, data) in &inputs {
        harness::decode(data);
    }
}

#[test]
fn the_accept_corpus_replays() {
    let inputs = corpus("accept");
    assert!(inputs.len() >= 4, "the accept corpus is missing");
    for (_, data) in &inputs {
        harness::accept(data);
    }
}

/// Sync message carrying `changes`, as a client sends it.
fn message_with(doc: &Automerge, changes: Vec<Vec<u8>>) -> Vec<u8> {
    Message {
        heads: doc.get_heads(),
        need: vec![],
        have: vec![],
        changes: ChunkList::from(changes),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode()
}

/// The seeds for `accept`: (name, input), input = mode byte + payload.
fn accept_seeds(base: &Automerge) -> Vec<(&'static str, Vec<u8>)> {
    let heads = base.get_heads();
    let new_changes = |doc: &Automerge| -> Vec<Vec<u8>> {
        doc.get_changes(&heads)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    };
    let mut seeds = Vec::new();

    // A client's first message: no changes, only what it has.
    let empty = Automerge::new();
    let mut state = sync::State::new();
    let first = empty.generate_sync_message(&mut state).unwrap().encode();
    seeds.push(("request", [vec![0], first].concat()));

    let mut added = base.clone();
    add_bullet(
        &mut added,
        "b-1",
        "Protect migrant workers",
        harness::WRITER,
        "agreed",
    );
    let changes = new_changes(&added);
    seeds.push((
        "add-bullet",
        [vec![0], message_with(&added, changes.clone())].concat(),
    ));
    seeds.push(("add-bullet-raw", [vec![1], changes[0].clone()].concat()));

    let mut typed = added.clone();
    let bullets = {
        let s = typed.get(ROOT, "sections").unwrap().unwrap().1;
        let s0 = typed.get(&s, 0).unwrap().unwrap().1;
        typed.get(&s0, "bullets").unwrap().unwrap().1
    };
    let bullet = typed.get(&bullets, 0).unwrap().unwrap().1;
    let t = typed.get(&bullet, "text").unwrap().unwrap().1;
    typed
        .transact::<_, _, AutomergeError>(|tx| {
            tx.splice_text(&t, 0, 0, "Jointly ")?;
            tx.put(&bullet, "status", "bracketed")?;
            Ok(())
        })
        .unwrap();
    seeds.push((
        "add-and-type",
        [vec![0], message_with(&typed, new_changes(&typed))].concat(),
    ));

    let mut forbidden = base.clone();
    forbidden
        .transact::<_, _, AutomergeError>(|tx| {
            let g = tx.get(ROOT, "group")?.unwrap().1;
            tx.put(&g, "dimension", "Hijacked")?;
            Ok(())
        })
        .unwrap();
    seeds.push((
        "forbidden-key",
        [vec![0], message_with(&forbidden, new_changes(&forbidden))].concat(),
    ));
    seeds
}

fn decode_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let join = map(vec![
        ("type", text("join")),
        ("senderId", text("peer-a")),
        (
            "peerMetadata",
            map(vec![("isEphemeral", Value::Bool(false))]),
        ),
        ("supportedProtocolVersions", Value::Array(vec![text("1")])),
    ]);
    let sync = map(vec![
        ("type", text("sync")),
        ("senderId", text("peer-a")),
        ("targetId", text("server")),
        ("documentId", text("3nGTEmYT1mBtZBEkG7sdW8Qmf7ZZ")),
        ("data", Value::Bytes(vec![0x42, 0, 0, 1, 0])),
    ]);
    let ephemeral = map(vec![
        ("type", text("ephemeral")),
        ("senderId", text("peer-a")),
        ("targetId", text("server")),
        ("documentId", text("3nGTEmYT1mBtZBEkG7sdW8Qmf7ZZ")),
        // cbor-x writes integers it cannot tell from floats as float64.
        ("count", Value::Float(3.0)),
        ("sessionId", text("s-1")),
        ("data", Value::Tag(64, Box::new(Value::Bytes(vec![0xa0])))),
    ]);
    let leave = map(vec![("type", text("leave")), ("senderId", text("peer-a"))]);
    let gossip = map(vec![
        ("type", text("remote-heads-changed")),
        ("senderId", text("peer-a")),
        ("targetId", text("server")),
        ("documentId", Value::Null),
    ]);
    // An indefinite-length map with an `undefined` value, as cbor-x may write.
    let mut indefinite = vec![0xbf];
    for (k, v) in [("type", "request"), ("senderId", "peer-a")] {
        indefinite.push(0x60 + k.len() as u8);
        indefinite.extend_from_slice(k.as_bytes());
        indefinite.push(0x60 + v.len() as u8);
        indefinite.extend_from_slice(v.as_bytes());
    }
    indefinite.extend_from_slice(&[0x66]);
    indefinite.extend_from_slice(b"extras");
    indefinite.push(0xf7); // undefined
    indefinite.push(0xff);
    vec![
        ("join", encode(&join)),
        ("sync", encode(&sync)),
        ("ephemeral", encode(&ephemeral)),
        ("leave", encode(&leave)),
        ("gossip", encode(&gossip)),
        ("indefinite-map", indefinite),
    ]
}

/// The fixture is group 1's outcome as `group_outcome` builds it today: same content, valid.
#[test]
fn the_fuzz_fixture_is_a_current_outcome_document() {
    let meeting = MeetingFile::demo();
    let fresh = rapporteur::docs::init::group_outcome(&meeting, &meeting.groups[0]).unwrap();
    let fresh = Automerge::load(&fresh).unwrap();
    let fixture = Automerge::load(harness::OUTCOME).unwrap();
    assert_eq!(
        rapporteur::docs::json::document_json(&fixture, None),
        rapporteur::docs::json::document_json(&fresh, None),
        "group_outcome changed: regenerate the fuzz seeds (write_fuzz_seeds)"
    );
    assert!(schema::validate_outcome(&fixture, &Default::default(), harness::WRITER).is_ok());

    // The seeds still mean what their names say.
    for (name, input) in accept_seeds(&fixture) {
        let (mode, rest) = input.split_first().unwrap();
        let chunks = if *mode == 0 {
            sync::Message::decode(rest).unwrap().changes
        } else {
            ChunkList::from(vec![rest.to_vec()])
        };
        let result = schema::accept(
            DocKind::Group(1),
            &fixture,
            &chunks,
            &schema::Writer {
                person: harness::WRITER,
                owners: &schema::ActorOwners::new(),
            },
            &mut None,
            &mut HashSet::new(),
        );
        match name {
            "request" => assert!(matches!(result, Ok(None)), "{name}"),
            "forbidden-key" => assert!(result.is_err(), "{name}"),
            _ => assert!(matches!(result, Ok(Some(_))), "{name}: {result:?}"),
        }
    }
}

/// The committed seeds are the ones the code makes (with `REGENERATE_FUZZ_SEEDS=1`, it rewrites
/// them instead: after a change of the document layout or of the protocol).
#[test]
fn fuzz_seeds_are_current() {
    let dir = fuzz_dir();
    let regenerate = std::env::var_os("REGENERATE_FUZZ_SEEDS").is_some();
    let fixture = dir.join("fixtures/outcome.automerge");
    if !regenerate {
        // The fixture embeds random actor ids, so compare what it holds, not its bytes.
        let committed = Automerge::load(&std::fs::read(&fixture).unwrap()).unwrap();
        let meeting = MeetingFile::demo();
        let fresh = Automerge::load(
            &rapporteur::docs::init::group_outcome(&meeting, &meeting.groups[0]).unwrap(),
        )
        .unwrap();
        assert_eq!(
            rapporteur::docs::json::document_json(&committed, None),
            rapporteur::docs::json::document_json(&fresh, None),
            "fuzz/fixtures/outcome.automerge is stale: rerun with REGENERATE_FUZZ_SEEDS=1"
        );
        for (name, _) in decode_seeds() {
            assert!(
                dir.join("corpus/decode")
                    .join(format!("seed-{name}"))
                    .exists(),
                "{name}"
            );
        }
        return;
    }
    let meeting = MeetingFile::demo();
    let outcome = rapporteur::docs::init::group_outcome(&meeting, &meeting.groups[0]).unwrap();
    std::fs::write(&fixture, &outcome).unwrap();
    let base = Automerge::load(&outcome).unwrap();
    for (name, data) in accept_seeds(&base) {
        std::fs::write(dir.join("corpus/accept").join(format!("seed-{name}")), data).unwrap();
    }
    for (name, data) in decode_seeds() {
        std::fs::write(dir.join("corpus/decode").join(format!("seed-{name}")), data).unwrap();
    }
}

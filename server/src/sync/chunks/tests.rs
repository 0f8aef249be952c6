use std::io::Write;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Automerge, ObjType, ScalarValue, ROOT};
use sha2::{Digest, Sha256};

use super::*;

fn uleb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb(mut n: i64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let done = (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// A chunk of `kind` around `body`, with the checksum automerge verifies, so that what the
/// tests build is what a hostile client could send.
fn seal(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut hashed = vec![kind];
    uleb(body.len() as u64, &mut hashed);
    hashed.extend_from_slice(body);
    let digest = Sha256::digest(&hashed);
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&digest[..4]);
    out.extend_from_slice(&hashed);
    out
}

/// A document with maps, lists, text with marks, counters, deletions and several actors.
fn varied_document() -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(b"writer-one".as_slice()));
    let list = doc.put_object(ROOT, "bullets", ObjType::List).unwrap();
    for i in 0..40 {
        let bullet = doc.insert_object(&list, i, ObjType::Map).unwrap();
        doc.put(&bullet, "id", format!("b-{i}")).unwrap();
        let text = doc.put_object(&bullet, "text", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, "Strengthen the collection of migration data")
            .unwrap();
        doc.splice_text(&text, 5, 3, "").unwrap();
        doc.put(&bullet, "votes", ScalarValue::counter(0)).unwrap();
        doc.increment(&bullet, "votes", 3).unwrap();
        doc.put(&bullet, "done", i % 2 == 0).unwrap();
        doc.put(&bullet, "at", 1_500_000_000_000_i64 + i as i64)
            .unwrap();
        doc.put(&bullet, "weight", 0.5).unwrap();
        doc.commit();
    }
    let mut other = doc
        .fork()
        .with_actor(ActorId::from(b"writer-two".as_slice()));
    other.delete(&list, 3).unwrap();
    other.put(ROOT, "title", "Outcome").unwrap();
    other.commit();
    doc.merge(&mut other).unwrap();
    doc
}

#[test]
fn what_automerge_writes_passes_with_its_operations_counted() {
    let mut doc = varied_document();
    let changes = doc.get_changes(&[]);
    assert!(changes.len() > 40);
    for change in &changes {
        let raw = change.raw_bytes();
        let shape = check_chunks([raw]).expect("a change automerge wrote");
        assert_eq!(shape.rows, change.len() as u64);
    }
    // All changes in one entry, as `load_incremental` reads them.
    let joined: Vec<u8> = changes
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    let total: u64 = changes.iter().map(|c| c.len() as u64).sum();
    assert_eq!(check_chunks([&joined[..]]).unwrap().rows, total);

    // A whole document, compressed or not: its change rows plus its operation rows, which
    // are fewer than the changes' operations (a deletion is recorded on what it deletes).
    for saved in [doc.save(), doc.save_nocompress()] {
        let shape = check_chunks([&saved[..]]).expect("a document automerge saved");
        assert!(shape.rows > changes.len() as u64);
        assert!(shape.rows <= changes.len() as u64 + total);
    }
    assert!(check_chunks([&doc.save()[..]]).unwrap().inflated > 0);
}

#[test]
fn compressed_changes_are_inflated_and_counted() {
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, &"a".repeat(5_000)).unwrap();
    doc.commit();
    let mut change = doc.get_changes(&[]).pop().unwrap().clone();
    let ops = change.len() as u64;
    let bytes = change.bytes().into_owned();
    assert_eq!(bytes[8], COMPRESSED, "automerge compresses a large change");
    let shape = check_chunks([&bytes[..]]).unwrap();
    assert_eq!(shape.rows, ops);
    assert!(shape.inflated > 0);
    Automerge::new().load_incremental(&bytes).unwrap();
}

/// A change of `ops` operations, each `root.flag = true`, built by taking a one-operation
/// change apart and repeating each column's one value `ops` times as a single run: a few bytes
/// for any count.
fn repeated_change(ops: u64) -> Vec<u8> {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "flag", true).unwrap();
    doc.commit();
    let change = doc.get_changes(&[]).pop().unwrap().clone();
    let raw = change.raw_bytes();
    let mut chunk_input = Reader(raw);
    let (kind, body) = chunk(&mut chunk_input).unwrap();
    assert_eq!(kind, CHANGE);

    let mut input = Reader(body);
    let deps = input.uleb().unwrap();
    input.take(deps * 32).unwrap();
    input.bytes().unwrap();
    input.uleb().unwrap();
    input.uleb().unwrap();
    input.sleb().unwrap();
    input.bytes().unwrap();
    let others = input.uleb().unwrap();
    assert_eq!(others, 0);
    let header = &body[..body.len() - input.0.len()];
    let columns = columns(&mut input).unwrap();

    let mut meta = Vec::new();
    let mut data = Vec::new();
    uleb(columns.len() as u64, &mut meta);
    for column in &columns {
        let original = input.take(column.len).unwrap();
        let mut one = Reader(original);
        let mut repeated = Vec::new();
        match column.spec & 0b111 {
            7 => {} // `true` has no raw bytes
            4 => {
                // Booleans: runs of false, true, ... The one value is false ([1]) or true ([0, 1]).
                if one.uleb().unwrap() == 0 {
                    repeated.push(0);
                }
                uleb(ops, &mut repeated);
            }
            kind => {
                let run = one.sleb().unwrap();
                if run == 0 {
                    repeated.push(0);
                    uleb(ops, &mut repeated);
                } else {
                    assert!(run == 1 || run == -1);
                    let start = one.0;
                    one.skip_value(match kind {
                        3 => Value::Sleb,
                        5 => Value::Text,
                        _ => Value::Uleb,
                    })
                    .unwrap();
                    sleb(ops as i64, &mut repeated);
                    repeated.extend_from_slice(&start[..start.len() - one.0.len()]);
                }
            }
        }
        uleb(column.spec, &mut meta);
        uleb(repeated.len() as u64, &mut meta);
        data.extend_from_slice(&repeated);
    }
    let mut rebuilt = header.to_vec();
    rebuilt.extend_from_slice(&meta);
    rebuilt.extend_from_slice(&data);
    seal(CHANGE, &rebuilt)
}

#[test]
fn a_change_declaring_billions_of_operations_is_refused_unread() {
    // The same construction with a small count is a change automerge loads: the large count
    // is therefore a real change, which automerge would try to apply in full.
    let small = repeated_change(1_000);
    assert_eq!(check_chunks([&small[..]]).unwrap().rows, 1_000);
    let mut doc = Automerge::new();
    doc.load_incremental(&small).unwrap();
    assert_eq!(doc.get_changes(&[]).pop().unwrap().len(), 1_000);

    let huge = repeated_change(1 << 40);
    assert!(huge.len() < 100, "{} bytes", huge.len());
    assert_eq!(check_chunks([&huge[..]]), Err(TOO_MANY_ROWS));
    let largest = repeated_change(MAX_CHANGE_OPS);
    assert_eq!(check_chunks([&largest[..]]).unwrap().rows, MAX_CHANGE_OPS);
    let just_over = repeated_change(MAX_CHANGE_OPS + 1);
    assert_eq!(check_chunks([&just_over[..]]), Err(CHANGE_TOO_LARGE));

    // Many changes add up: the bound on rows is per message.
    let many = vec![&largest[..]; (MAX_ROWS / MAX_CHANGE_OPS) as usize];
    assert_eq!(check_chunks(many.clone()).unwrap().rows, MAX_ROWS);
    let one_more: Vec<&[u8]> = many.into_iter().chain([&small[..]]).collect();
    assert_eq!(check_chunks(one_more), Err(TOO_MANY_ROWS));
}

#[test]
fn a_compressed_change_that_inflates_too_far_is_refused() {
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(MAX_INFLATED_BYTES >> 20) + 1 {
        deflater.write_all(&zeros).unwrap();
    }
    let bomb = seal(COMPRESSED, &deflater.finish().unwrap());
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    assert_eq!(check_chunks([&bomb[..]]), Err(TOO_LARGE));
}

#[test]
fn bundles_and_unknown_chunks_are_refused() {
    let mut doc = varied_document();
    let hashes: Vec<_> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
    let bundle = doc.document().bundle(hashes).unwrap();
    assert_eq!(
        check_chunks([bundle.bytes()]),
        Err("change bundles are not accepted in sync messages")
    );
    // The bundle the fuzzer found (first byte: the fuzz target's mode).
    let found = include_bytes!("../../../../fuzz/corpus/accept/bundle-amplification");
    let message = automerge::sync::Message::decode(&found[1..]).unwrap();
    let entries: Vec<&[u8]> = message.changes.iter().collect();
    assert_eq!(
        check_chunks(entries),
        Err("change bundles are not accepted in sync messages")
    );
    assert_eq!(check_chunks([&seal(9, b"")[..]]), Err(MALFORMED));
}

#[test]
fn truncated_and_garbled_chunks_are_malformed_never_a_panic() {
    let mut doc = varied_document();
    let saved = doc.save();
    let change = doc.get_changes(&[]).pop().unwrap().raw_bytes().to_vec();
    for bytes in [&saved, &change] {
        for cut in 0..bytes.len() {
            let _ = check_chunks([&bytes[..cut]]);
        }
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut garbled = bytes.clone();
                garbled[at] ^= flip;
                let _ = check_chunks([&garbled[..]]);
            }
        }
    }
    assert_eq!(check_chunks([&saved[..saved.len() / 2]]), Err(MALFORMED));
    assert_eq!(check_chunks([&b"not a chunk"[..]]), Err(MALFORMED));
    assert_eq!(check_chunks(std::iter::empty()), Ok(Shape::default()));
}

#[test]
fn heads_are_those_automerge_loads_to() {
    let mut doc = varied_document();
    let all = doc.get_changes(&[]);
    let changes: Vec<Vec<u8>> = all.iter().map(|c| c.raw_bytes().to_vec()).collect();
    let mut large = AutoCommit::new();
    let text = large.put_object(ROOT, "text", ObjType::Text).unwrap();
    large.splice_text(&text, 0, 0, &"a".repeat(5_000)).unwrap();
    large.commit();
    let compressed = large
        .get_changes(&[])
        .pop()
        .unwrap()
        .clone()
        .bytes()
        .into_owned();
    assert_eq!(compressed[8], COMPRESSED);

    let half = changes.len() / 2;
    let snapshot = {
        let mut first = Automerge::new();
        first.load_incremental(&changes[..half].concat()).unwrap();
        first.save()
    };
    // A snapshot with changes after it, as the store keeps a compacted document; changes
    // alone, as it keeps a young one; a snapshot alone; all but the last change; a compressed
    // change; and two writers' concurrent changes (two heads).
    let forms: Vec<Vec<u8>> = vec![
        [snapshot.clone(), changes[half..].concat()].concat(),
        changes.concat(),
        doc.save(),
        snapshot.clone(),
        changes[..changes.len() - 1].concat(),
        compressed,
        {
            let mut a = doc
                .fork()
                .with_actor(ActorId::from(b"writer-three".as_slice()));
            let mut b = doc
                .fork()
                .with_actor(ActorId::from(b"writer-four".as_slice()));
            a.put(ROOT, "title", "A").unwrap();
            b.put(ROOT, "title", "B").unwrap();
            a.commit();
            b.commit();
            a.merge(&mut b).unwrap();
            let concurrent = a.get_changes(&doc.get_heads());
            [
                doc.save(),
                concurrent
                    .iter()
                    .flat_map(|c| c.raw_bytes().to_vec())
                    .collect(),
            ]
            .concat()
        },
    ];
    for data in &forms {
        let mut loaded = Automerge::new();
        loaded.load_incremental(data).unwrap();
        assert_eq!(heads(data).unwrap(), loaded.get_heads());
        // Every change is counted once: in a document chunk, or as a change chunk whose
        // bytes are where the history says.
        let history = super::history(data).unwrap();
        let count = history.snapshot_changes.unwrap() + history.changes.len() as u64;
        assert_eq!(count, loaded.get_changes(&[]).len() as u64);
        for change in &history.changes {
            let bytes = &data[change.bytes.clone()];
            let parsed = automerge::Change::try_from(bytes).unwrap();
            assert_eq!(parsed.hash(), change.hash);
            let all = loaded.get_changes(&[]);
            let theirs = all.iter().find(|c| c.hash() == change.hash).unwrap();
            assert_eq!(theirs.deps(), &change.deps[..]);
        }
    }
    assert_eq!(heads(forms.last().unwrap()).unwrap().len(), 2);
    assert_eq!(heads(&[]), Ok(Vec::new()));
    for cut in 0..snapshot.len() {
        let _ = heads(&snapshot[..cut]);
    }
    assert_eq!(heads(b"not a chunk"), Err(MALFORMED));
}

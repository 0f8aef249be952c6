//! The shape check of the changes in a client's sync message, made before automerge loads them.
//!
//! Automerge believes what a chunk says about its own size. A change's columns are run-length
//! encoded, so a few bytes can declare billions of operations; compressed chunks and
//! compressed columns inflate without bound; and automerge 0.12 expands the columns of a
//! change *bundle* into memory before it checks them (a 415-byte bundle found by fuzzing made
//! it spend 4 s and 2.4 GB before it failed). An honest peer needs none of this: automerge-repo
//! clients send changes and whole documents, never bundles, and a meeting's documents are
//! small. So before anything is loaded, [`check_chunks`] walks every chunk's header and
//! columns, counting rows without expanding them, and refuses a message that
//! - holds a chunk other than a document, a change or a compressed change;
//! - would inflate to more than [`MAX_INFLATED_BYTES`]; or
//! - declares more than [`MAX_CHANGE_OPS`] operations in one change, or more than
//!   [`MAX_ROWS`] rows in all (operations and, in a document, changes).
//!
//! The walk reads each byte once and inflates at most [`MAX_INFLATED_BYTES`]. The chunk
//! layout is automerge's binary format (<https://automerge.org/automerge-binary-format-spec/>).

use std::io::Read;

/// Rows (operations, and the changes of a whole document) one sync message may declare. A
/// client sends its whole document rather than its changes when they are more than a third of
/// it, so this bounds the history of a document a client can still sync: a day of drafting is
/// tens of thousands of operations. Loading a saved document of 1,000,000 operations took
/// automerge 0.9 s and 95 MB on the development machine.
pub const MAX_ROWS: u64 = 1_000_000;

/// Operations one change may declare. A change is what one person did in one go: typing makes
/// changes of a few operations, and pasting twenty bullets of the longest kind is 100,000.
/// Applying a change costs automerge more per operation than loading a saved document: one of
/// 1,000,000 operations took 5 s and 520 MB, one of 100,000 about a tenth of that.
pub const MAX_CHANGE_OPS: u64 = 100_000;

/// Bytes the compressed parts of one sync message may inflate to.
pub const MAX_INFLATED_BYTES: usize = 64 << 20;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
pub(crate) const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED: u8 = 2;
const BUNDLE: u8 = 3;

const MALFORMED: &str = "malformed change in sync message";
const TOO_MANY_ROWS: &str = "the sync message declares too many operations";
const CHANGE_TOO_LARGE: &str = "a change in the sync message declares too many operations";
const TOO_LARGE: &str = "the sync message inflates to too many bytes";

/// What one sync message's chunks amount to, once checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// The largest row count of any column of each chunk, summed over chunks.
    pub rows: u64,
    /// Bytes inflated from compressed chunks and columns.
    pub inflated: usize,
}

/// Checks the chunks of one sync message (each entry may hold several chunks back to back, as
/// `load_incremental` reads them). See the module documentation.
pub fn check_chunks<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Shape, &'static str> {
    let mut shape = Shape::default();
    for entry in entries {
        let mut input = Reader(entry);
        while !input.is_empty() {
            let (kind, body) = chunk(&mut input)?;
            match kind {
                DOCUMENT => document(body, &mut shape)?,
                CHANGE => change(body, &mut shape)?,
                COMPRESSED => {
                    let inflated = inflate(body, &mut shape)?;
                    change(&inflated, &mut shape)?;
                }
                BUNDLE => return Err("change bundles are not accepted in sync messages"),
                _ => return Err(MALFORMED),
            }
        }
    }
    Ok(shape)
}

/// What stored chunks (back to back: a document, changes or both, as `load_incremental` reads
/// them) say about the history they load into, read without loading it (`history`).
#[derive(Debug, Default)]
pub struct History {
    /// The heads the document chunks name.
    pub snapshot_heads: Vec<automerge::ChangeHash>,
    /// The changes the document chunks hold, if they could be counted.
    pub snapshot_changes: Option<u64>,
    /// The change chunks, in order.
    pub changes: Vec<StoredChange>,
}

/// One stored change chunk: its hash, its dependencies, and where its bytes are.
#[derive(Debug)]
pub struct StoredChange {
    pub hash: automerge::ChangeHash,
    pub deps: Vec<automerge::ChangeHash>,
    pub bytes: std::ops::Range<usize>,
}

impl History {
    /// The heads of the document the chunks load into: the heads the document chunks name,
    /// and the hashes of the changes, less every hash some change depends on. Sorted, as
    /// automerge gives heads. A change whose dependencies are missing from the chunks counts
    /// here although automerge would hold it back; the caller compares with the loaded
    /// document's heads.
    pub fn heads(&self) -> Vec<automerge::ChangeHash> {
        let deps: std::collections::HashSet<_> =
            self.changes.iter().flat_map(|c| c.deps.iter()).collect();
        let heads: std::collections::BTreeSet<_> = self
            .snapshot_heads
            .iter()
            .chain(self.changes.iter().map(|c| &c.hash))
            .filter(|h| !deps.contains(h))
            .copied()
            .collect();
        heads.into_iter().collect()
    }
}

/// Reads `data`'s `History`: each document chunk's header and change count, and each change
/// (automerge parses it, to hash it as it does); no operation is applied.
pub fn history(data: &[u8]) -> Result<History, &'static str> {
    let mut history = History {
        snapshot_changes: Some(0),
        ..History::default()
    };
    let mut input = Reader(data);
    while !input.is_empty() {
        let start = data.len() - input.0.len();
        let (kind, body) = chunk(&mut input)?;
        let end = data.len() - input.0.len();
        match kind {
            DOCUMENT => {
                let mut body = Reader(body);
                for _ in 0..body.uleb()? {
                    body.bytes()?;
                }
                let n = body.uleb()?;
                for hash in body.take(n.checked_mul(32).ok_or(MALFORMED)?)?.chunks(32) {
                    let hash = automerge::ChangeHash::try_from(hash).map_err(|_| MALFORMED)?;
                    history.snapshot_heads.push(hash);
                }
                // The change columns' rows are the document's changes.
                let change_columns = columns(&mut body)?;
                let mut shape = Shape::default();
                let counted = columns(&mut body)
                    .and_then(|_| count(&mut body, &change_columns, &mut shape))
                    .map(|()| shape.rows);
                history.snapshot_changes = history
                    .snapshot_changes
                    .zip(counted.ok())
                    .map(|(a, b)| a + b);
            }
            CHANGE | COMPRESSED => {
                let change =
                    automerge::Change::try_from(&data[start..end]).map_err(|_| MALFORMED)?;
                history.changes.push(StoredChange {
                    hash: change.hash(),
                    deps: change.deps().to_vec(),
                    bytes: start..end,
                });
            }
            _ => return Err(MALFORMED),
        }
    }
    history.snapshot_heads.sort();
    history.snapshot_heads.dedup();
    Ok(history)
}

/// The heads of the document that `data` loads into, without loading it (`History::heads`).
pub fn heads(data: &[u8]) -> Result<Vec<automerge::ChangeHash>, &'static str> {
    history(data).map(|h| h.heads())
}

/// Magic bytes, checksum (4 bytes, checked by automerge), type, LEB128 length, body.
fn chunk<'a>(input: &mut Reader<'a>) -> Result<(u8, &'a [u8]), &'static str> {
    if input.take(4)? != MAGIC {
        return Err(MALFORMED);
    }
    input.take(4)?;
    let kind = input.take(1)?[0];
    let len = input.uleb()?;
    Ok((kind, input.take(len)?))
}

/// A change: dependencies, actor, seq, start op, time, message, other actors, then the
/// operation columns (never compressed inside a change).
fn change(body: &[u8], shape: &mut Shape) -> Result<(), &'static str> {
    let mut input = Reader(body);
    let deps = input.uleb()?;
    input.take(deps.checked_mul(32).ok_or(MALFORMED)?)?;
    input.bytes()?; // actor
    input.uleb()?; // seq
    input.uleb()?; // start op
    input.sleb()?; // time
    input.bytes()?; // message
    let others = input.uleb()?;
    for _ in 0..others {
        input.bytes()?;
    }
    let columns = columns(&mut input)?;
    if columns.iter().any(|c| c.deflated()) {
        return Err(MALFORMED);
    }
    let before = shape.rows;
    count(&mut input, &columns, shape)?;
    if shape.rows - before > MAX_CHANGE_OPS {
        return Err(CHANGE_TOO_LARGE);
    }
    Ok(())
}

/// A whole document: actors, heads, the change columns' and the operation columns' metadata,
/// their data (columns may be compressed), then the heads' indices.
fn document(body: &[u8], shape: &mut Shape) -> Result<(), &'static str> {
    let mut input = Reader(body);
    let actors = input.uleb()?;
    for _ in 0..actors {
        input.bytes()?;
    }
    let heads = input.uleb()?;
    input.take(heads.checked_mul(32).ok_or(MALFORMED)?)?;
    let change_columns = columns(&mut input)?;
    let op_columns = columns(&mut input)?;
    count(&mut input, &change_columns, shape)?;
    count(&mut input, &op_columns, shape)
}

/// One column's metadata: its specification (id, compression bit, type) and byte length.
struct Column {
    spec: u64,
    len: u64,
}

impl Column {
    fn deflated(&self) -> bool {
        self.spec & 0b1000 != 0
    }
}

fn columns(input: &mut Reader<'_>) -> Result<Vec<Column>, &'static str> {
    let n = input.uleb()?;
    // Each column's metadata takes at least two bytes: a larger count is a lie.
    if n > input.0.len() as u64 / 2 {
        return Err(MALFORMED);
    }
    (0..n)
        .map(|_| {
            Ok(Column {
                spec: input.uleb()?,
                len: input.uleb()?,
            })
        })
        .collect()
}

/// Reads the data of `columns` from `input` and adds the largest row count among them to
/// `shape.rows`.
fn count(
    input: &mut Reader<'_>,
    columns: &[Column],
    shape: &mut Shape,
) -> Result<(), &'static str> {
    let mut most = 0;
    for column in columns {
        let data = input.take(column.len)?;
        let inflated;
        let data = if column.deflated() {
            inflated = inflate(data, shape)?;
            &inflated[..]
        } else {
            data
        };
        let budget = MAX_ROWS - shape.rows;
        most = most.max(rows(column.spec & 0b111, data, budget)?);
    }
    shape.rows += most;
    Ok(())
}

/// How a column's values are encoded.
#[derive(Clone, Copy)]
enum Value {
    Uleb,
    Sleb,
    Text,
}

/// The rows a column declares, at most `budget`. Column types: group cardinality, actor,
/// integer and value metadata are run-length encoded unsigned LEB128; delta columns are
/// run-length encoded signed LEB128; strings are run-length encoded length-prefixed UTF-8;
/// booleans are alternating run lengths; raw values take their length from the metadata column
/// and declare no rows of their own.
fn rows(kind: u64, data: &[u8], budget: u64) -> Result<u64, &'static str> {
    let mut input = Reader(data);
    let mut rows: u64 = 0;
    let mut add = |n: u64| {
        rows = rows
            .checked_add(n)
            .filter(|&r| r <= budget)
            .ok_or(TOO_MANY_ROWS)?;
        Ok::<_, &'static str>(())
    };
    match kind {
        7 => {}
        4 => {
            while !input.is_empty() {
                add(input.uleb()?)?;
            }
        }
        _ => {
            let value = match kind {
                3 => Value::Sleb,
                5 => Value::Text,
                _ => Value::Uleb,
            };
            while !input.is_empty() {
                let run = input.sleb()?;
                if run > 0 {
                    add(run.unsigned_abs())?;
                    input.skip_value(value)?;
                } else if run < 0 {
                    add(run.unsigned_abs())?;
                    for _ in 0..run.unsigned_abs() {
                        input.skip_value(value)?;
                    }
                } else {
                    add(input.uleb()?)?; // a run of nulls
                }
            }
        }
    }
    Ok(rows)
}

/// Inflates a raw DEFLATE stream, counting it against the message's budget.
fn inflate(data: &[u8], shape: &mut Shape) -> Result<Vec<u8>, &'static str> {
    let room = MAX_INFLATED_BYTES - shape.inflated;
    let mut out = Vec::new();
    flate2::bufread::DeflateDecoder::new(data)
        .take(room as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| MALFORMED)?;
    if out.len() > room {
        return Err(TOO_LARGE);
    }
    shape.inflated += out.len();
    Ok(out)
}

/// Reads LEB128 numbers and byte runs off the front of a slice; running out is malformed.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], &'static str> {
        let n = usize::try_from(n).map_err(|_| MALFORMED)?;
        if n > self.0.len() {
            return Err(MALFORMED);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn uleb(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(MALFORMED)
    }

    fn sleb(&mut self) -> Result<i64, &'static str> {
        let mut value = 0i64;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            if shift >= 64 {
                return Err(MALFORMED);
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    /// A LEB128 length, then that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.uleb()?;
        self.take(n)
    }

    /// Reads past one value of a column.
    fn skip_value(&mut self, value: Value) -> Result<(), &'static str> {
        match value {
            Value::Uleb => self.uleb().map(drop),
            Value::Sleb => self.sleb().map(drop),
            Value::Text => self.bytes().map(drop),
        }
    }
}

#[cfg(test)]
mod tests;

//! `rapporteur-coldload`: how long a cold document takes to load, on the server's own path.
//!
//! Builds a group outcome document with a given number of changes (people typing into
//! bullets, a few characters per change), stores it in a fresh SQLite database through the
//! server's `Store`, and times what the server does when a peer asks for a document nobody has
//! open: `Store::load_chunks`, then `docs::load_doc`. Two stored forms are timed: as the server
//! keeps documents (compacted to a snapshot, plus the increments since), and the worst case of
//! one chunk per change, never compacted. For the first, also the answer to a peer that holds
//! nothing of the document, which the server sends from the stored chunks while it loads:
//! `Store::load_chunks`, then `docs::answer_from_storage`.
//!
//! Then new devices joining the document, through the server's document registry (no sockets):
//! one after another, the time from a peer's first request to the answer that carries the whole
//! document; the first finds the document cold, the others loaded (once the load is done), with
//! its heads unchanged or changed (a server edit) before each.
//!
//! And devices that hold a copy of the document, in step with it, coming back to it while it
//! is cold (after a restart, or once it was unloaded for being idle): each through a fresh
//! registry over the same store, the time from the device's first message to the server's
//! answer. Three first messages: from a device that kept its sync state for the server (its last
//! summary starts from the heads they shared), from one that did not (its summary names every
//! change), and from one that kept its state but missed the last changes (`BEHIND`).
//!
//! And, with the document's size, the server's check of a rapporteur's keystroke
//! (`schema::accept`) on the document a tenth of the way through and whole; and compacting the
//! stored document into one snapshot (`docs::compact`), from the document in memory and from
//! the stored chunks.

use std::time::{Duration, Instant};

use anyhow::Context;
use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ScalarValue, ROOT};
use clap::Parser;
use rapporteur::docs::load_doc;
use rapporteur::ids::DocId;
use rapporteur::store::Store;

/// Changes a device coming back to the document has missed.
const BEHIND: usize = 10;

/// The server's allocator: the load is timed as the server does it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rapporteur-coldload",
    about = "Times a cold load of a large document"
)]
struct Cli {
    #[arg(long, default_value_t = 50_000)]
    changes: usize,
    /// Loads timed per form; the report gives the median and the slowest.
    #[arg(long, default_value_t = 7)]
    repeat: usize,
    /// Increments left after the snapshot (the server compacts every 256 chunks).
    #[arg(long, default_value_t = 128)]
    increments: usize,
    /// New peers joining the loaded document, one after another, per variant.
    #[arg(long, default_value_t = 50)]
    joins: usize,
    /// Keystrokes checked per document size.
    #[arg(long, default_value_t = 51)]
    keystrokes: usize,
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Appends `changes` typing changes to the document's first section, each its own chunk.
fn type_into(doc: &mut Automerge, changes: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let bullets = first_bullets(doc)?;
    let mut texts = Vec::new();
    let mut chunks = Vec::with_capacity(changes);
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..changes {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let before = doc.get_heads();
        let mut tx = doc.transaction();
        if i % 500 == 0 && texts.len() < 100 {
            let at = tx.length(&bullets);
            let b = tx.insert_object(&bullets, at, ObjType::Map)?;
            tx.put(&b, "id", format!("bullet-{i}"))?;
            texts.push(tx.put_object(&b, "text", ObjType::Text)?);
            tx.put_object(&b, "proposedBy", ObjType::List)?;
            tx.put_object(&b, "tags", ObjType::List)?;
            tx.put(&b, "status", "proposed")?;
            tx.put(&b, "createdBy", "coldload")?;
            tx.put(
                &b,
                "createdAt",
                ScalarValue::Int(1_700_000_000_000 + i as i64),
            )?;
        } else {
            let text = &texts[(rng as usize) % texts.len()];
            let len = tx.length(text);
            if len > 300 && rng.is_multiple_of(3) {
                tx.splice_text(text, len - 3, 3, "")?;
            } else {
                tx.splice_text(
                    text,
                    len,
                    0,
                    ["mig", "rat", "ion ", "pa"][(rng % 4) as usize],
                )?;
            }
        }
        tx.commit();
        chunks.push(doc.save_after(&before));
    }
    Ok(chunks)
}

async fn store_with(
    doc_chunks: &[Vec<u8>],
    base: &[Vec<u8>],
) -> anyhow::Result<(tempfile::TempDir, std::sync::Arc<dyn Store>, DocId)> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("coldload.db").display());
    let store = rapporteur::store::open(&url).await?;
    rapporteur::admin::bootstrap_demo(store.as_ref(), "http://127.0.0.1:1").await?;
    let groups = store.groups(rapporteur::meeting::DEMO_SLUG).await?;
    let id = groups.first().context("no group")?.doc.clone();
    // Replace the demo document's content by ours: same record, our chunks.
    let existing = store.load_chunks(&id).await?;
    let upto = existing.last().map(|c| c.seq).unwrap_or(0);
    store.compact(&id, upto, &base[0]).await?;
    for batch in doc_chunks.chunks(1000) {
        let rows: Vec<(DocId, Vec<u8>)> = batch.iter().map(|c| (id.clone(), c.clone())).collect();
        store.append_chunks(&rows).await?;
    }
    Ok((dir, store, id))
}

async fn time_loads(
    store: &dyn Store,
    id: &DocId,
    repeat: usize,
    expect: usize,
) -> anyhow::Result<serde_json::Value> {
    let mut read = Vec::new();
    let mut load = Vec::new();
    let mut total = Vec::new();
    let mut first = Vec::new();
    let mut answer = Vec::new();
    let mut chunk_count = 0;
    let hello = {
        let empty = Automerge::new();
        let msg = empty
            .generate_sync_message(&mut automerge::sync::State::new())
            .context("a new peer says hello")?;
        automerge::sync::Message::decode(&msg.encode())?
    };
    let mut answer_bytes = 0;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let chunks = store.load_chunks(id).await?;
        let compact_after = rapporteur::docs::DocsConfig::default().compact_after;
        let early = rapporteur::docs::answer_from_storage(&chunks, compact_after, &hello);
        if let Some(bytes) = early {
            answer.push(t.elapsed());
            // The peer loads it to the whole document.
            let mut peer = Automerge::new();
            let mut state = automerge::sync::State::new();
            peer.receive_sync_message(&mut state, automerge::sync::Message::decode(&bytes)?)?;
            anyhow::ensure!(
                peer.get_changes(&[]).len() == expect,
                "answered a different document"
            );
            answer_bytes = bytes.len();
        }
        let t0 = Instant::now();
        let chunks = store.load_chunks(id).await?;
        let t1 = Instant::now();
        chunk_count = chunks.len();
        let first_chunk = chunks[0].data.clone();
        let doc = tokio::task::spawn_blocking(move || load_doc(&chunks)).await??;
        let t2 = Instant::now();
        // The first chunk alone (the snapshot, when there is one): how much of `load_doc` is
        // automerge rebuilding the document, and how much the increments after it.
        let head = first_chunk.clone();
        first.push(
            tokio::task::spawn_blocking(move || {
                let t = Instant::now();
                Automerge::load(&head).map(|_| t.elapsed())
            })
            .await??,
        );
        anyhow::ensure!(
            doc.get_changes(&[]).len() == expect,
            "loaded a different document"
        );
        read.push(t1 - t0);
        load.push(t2 - t1);
        total.push(t2 - t0);
    }
    let answered = if answer.is_empty() {
        serde_json::Value::Null
    } else {
        let mut times = ms(&mut answer);
        times["bytes"] = answer_bytes.into();
        times
    };
    Ok(serde_json::json!({
        "chunks": chunk_count,
        "answer_from_storage": answered,
        "read_chunks": ms(&mut read),
        "load_doc": ms(&mut load),
        "load_first_chunk": ms(&mut first),
        "total": ms(&mut total),
    }))
}

/// New peers, each holding nothing, asking for the document one after another through the
/// server's registry and document actor: milliseconds from the request to the answer.
async fn time_joins(
    store: std::sync::Arc<dyn Store>,
    id: &DocId,
    joins: usize,
) -> anyhow::Result<serde_json::Value> {
    use rapporteur::docs::{Access, DocCommand};

    let dir = tempfile::tempdir()?;
    let state = registry(store, dir.path()).await?;
    let hello = {
        let msg = Automerge::new()
            .generate_sync_message(&mut automerge::sync::State::new())
            .context("a new peer says hello")?;
        msg.encode()
    };
    let mut conn = 0;
    let mut join = || {
        conn += 1;
        let (link, rx) = delegate_link(&state, conn);
        let cmd = DocCommand::Sync {
            link,
            access: Access::Read,
            data: hello.clone(),
        };
        (cmd, rx)
    };
    let time_one = async |cmd: DocCommand, mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>| {
        let DocCommand::Sync { link, .. } = &cmd else {
            anyhow::bail!("a join is a sync message");
        };
        let link_conn = link.conn;
        let (frame, elapsed) = ask(&state, id, cmd, &mut rx).await?;
        // Untimed: the peer loads the answer, which must bring it to the document's heads.
        let mut peer = Automerge::new();
        let answer = sync_message(&frame)?;
        peer.receive_sync_message(&mut automerge::sync::State::new(), answer)?;
        let heads = state.docs.read(id, |doc| doc.get_heads()).await?;
        anyhow::ensure!(
            peer.get_heads() == heads,
            "the answer does not carry the document"
        );
        // It leaves before the next one comes: each join is timed on its own, and a peer that
        // never answers is not sent the document again when it changes.
        state
            .docs
            .send(id, DocCommand::Leave { conn: link_conn })
            .await
            .ok()
            .context("document gone")?;
        Ok::<_, anyhow::Error>((elapsed, rx))
    };
    let mut keep = Vec::new();
    let (cmd, rx) = join();
    let (cold, rx) = time_one(cmd, rx).await?;
    keep.push(rx);
    // Its check read the document, which waited for the load: the joins below find it loaded.
    let mut unchanged = Vec::new();
    for _ in 0..joins {
        let (cmd, rx) = join();
        let (t, rx) = time_one(cmd, rx).await?;
        unchanged.push(t);
        keep.push(rx);
    }
    let mut changed = Vec::new();
    for i in 0..joins {
        state
            .docs
            .edit(id, move |doc| {
                let mut tx = doc.transaction();
                tx.put(ROOT, "coldload", i as i64)?;
                tx.commit();
                Ok(())
            })
            .await?;
        let (cmd, rx) = join();
        let (t, rx) = time_one(cmd, rx).await?;
        changed.push(t);
        keep.push(rx);
    }
    state.shutdown.cancel();
    Ok(serde_json::json!({
        "cold_ms": cold.as_secs_f64() * 1e3,
        "answered_before_load": state.metrics.answered_before_load.load(std::sync::atomic::Ordering::Relaxed),
        "heads_unchanged": ms(&mut unchanged),
        "heads_changed": ms(&mut changed),
        "joins": joins,
    }))
}

/// The server's state over `store`, with a document registry of its own (every document
/// cold), as the server starts.
async fn registry(
    store: std::sync::Arc<dyn Store>,
    dir: &std::path::Path,
) -> anyhow::Result<rapporteur::AppState> {
    let settings = rapporteur::state::Settings {
        public_url: "http://127.0.0.1:1".into(),
        web_dir: dir.to_path_buf(),
        docs: Default::default(),
        limits: Default::default(),
    };
    Ok(rapporteur::state::AppState::new(store, settings).await?)
}

/// Sends a peer's command to the document and waits for the first frame back: the frame, and
/// how long it took.
async fn ask(
    state: &rapporteur::AppState,
    id: &DocId,
    cmd: rapporteur::docs::DocCommand,
    rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> anyhow::Result<(Vec<u8>, Duration)> {
    let t = Instant::now();
    state
        .docs
        .send(id, cmd)
        .await
        .ok()
        .context("document gone")?;
    let frame = rx.recv().await.context("no answer")?;
    Ok((frame, t.elapsed()))
}

/// A peer link for a read-only delegate device, and the receiver of the frames sent to it.
fn delegate_link(
    state: &rapporteur::AppState,
    conn: u64,
) -> (
    std::sync::Arc<rapporteur::docs::PeerLink>,
    tokio::sync::mpsc::Receiver<Vec<u8>>,
) {
    let person = rapporteur::auth::Person {
        id: rapporteur::ids::PersonId::random(),
        meeting: rapporteur::meeting::DEMO_SLUG.into(),
        role: rapporteur::meeting::Role::Delegate,
        group: None,
        name: "coldload".into(),
    };
    peer_link(state, conn, person)
}

/// A peer link for `person`'s device, and the receiver of the frames sent to it.
fn peer_link(
    state: &rapporteur::AppState,
    conn: u64,
    person: rapporteur::auth::Person,
) -> (
    std::sync::Arc<rapporteur::docs::PeerLink>,
    tokio::sync::mpsc::Receiver<Vec<u8>>,
) {
    use rapporteur::ids::PeerId;
    let (outbox, rx) = rapporteur::docs::Outbox::new(
        64,
        tokio_util::sync::CancellationToken::new(),
        state.metrics.clone(),
    );
    let person = std::sync::Arc::new(person);
    let link = std::sync::Arc::new(rapporteur::docs::PeerLink {
        conn,
        peer_id: PeerId(format!("coldload-{conn}")),
        person,
        outbox,
    });
    (link, rx)
}

/// Devices holding `doc` (as stored under `id`), or `behind` (its first changes, all but the
/// last few), coming back to it while it is cold, each to a fresh registry: milliseconds from
/// the first message to the answer, which must name the document's heads and bring the device
/// every change it lacks.
async fn time_returning(
    store: std::sync::Arc<dyn Store>,
    id: &DocId,
    doc: &Automerge,
    behind: &Automerge,
    repeat: usize,
) -> anyhow::Result<serde_json::Value> {
    use automerge::sync::State;
    use rapporteur::docs::{Access, DocCommand};

    let dir = tempfile::tempdir()?;
    let heads = doc.get_heads();
    // A device's sync state as automerge-repo keeps it: the heads it last shared.
    let kept = |device: &Automerge| {
        let mut state = State::new();
        state.shared_heads = device.get_heads();
        state
    };
    let hellos = [
        ("kept_state", doc, kept(doc)),
        ("fresh_state", doc, State::new()),
        ("behind", behind, kept(behind)),
    ]
    .map(|(name, device, mut s)| {
        let msg = device.generate_sync_message(&mut s).map(|m| m.encode());
        (name, device, msg)
    });
    let mut report = serde_json::Map::new();
    for (name, device, hello) in hellos {
        let hello = hello.context("a device says hello")?;
        let mut times = Vec::new();
        let mut early = 0;
        for _ in 0..repeat.max(1) {
            let state = registry(store.clone(), dir.path()).await?;
            let (link, mut rx) = delegate_link(&state, 1);
            let cmd = DocCommand::Sync {
                link,
                access: Access::Read,
                data: hello.clone(),
            };
            let (frame, elapsed) = ask(&state, id, cmd, &mut rx).await?;
            times.push(elapsed);
            let answer = sync_message(&frame)?;
            let mut copy = device.clone();
            copy.receive_sync_message(&mut State::new(), answer.clone())?;
            anyhow::ensure!(
                answer.heads == heads && copy.get_heads() == heads,
                "the answer does not bring the device to the document's heads"
            );
            early += state
                .metrics
                .answered_before_load
                .load(std::sync::atomic::Ordering::Relaxed);
            // The load goes on after the answer: let it finish before the next device, so that
            // each is timed against its own load only.
            state.docs.read(id, |_| ()).await?;
            state.shutdown.cancel();
        }
        let mut timed = ms(&mut times);
        timed["devices"] = times.len().into();
        timed["answered_before_load"] = early.into();
        report.insert(name.into(), timed);
    }
    Ok(report.into())
}

/// The bullets of the document's first section.
fn first_bullets(doc: &Automerge) -> anyhow::Result<automerge::ObjId> {
    let (_, sections) = doc.get(ROOT, "sections")?.context("no sections")?;
    let (_, first) = doc.get(&sections, 0)?.context("no section")?;
    let (_, bullets) = doc.get(&first, "bullets")?.context("no bullets")?;
    Ok(bullets)
}

/// Types one character at the end of the `i`th bullet of the first section (round the
/// bullets), in a change of its own.
fn keystroke(doc: &mut Automerge, i: usize) -> anyhow::Result<()> {
    let bullets = first_bullets(doc)?;
    let (_, bullet) = doc
        .get(&bullets, i % doc.length(&bullets))?
        .context("no bullet")?;
    let (_, text) = doc.get(&bullet, "text")?.context("no text")?;
    let mut tx = doc.transaction();
    let at = tx.length(&text);
    tx.splice_text(&text, at, 0, "n")?;
    tx.commit();
    Ok(())
}

/// A rapporteur's keystroke into the document `doc` (one character at the end of a bullet, in a
/// change of its own): the server's check of the message that carries it, `schema::accept`,
/// with the bullet identities cached as the document's actor caches them.
fn time_keystrokes(doc: &Automerge, repeat: usize) -> anyhow::Result<serde_json::Value> {
    let owners = rapporteur::docs::schema::ActorOwners::new();
    let writer = rapporteur::docs::schema::Writer {
        person: "coldload",
        owners: &owners,
    };
    let mut identities = None;
    let mut refused = std::collections::HashSet::new();
    let mut times = Vec::with_capacity(repeat);
    // The first keystroke also works out the bullet identities, which the actor keeps.
    for i in 0..=repeat {
        let mut client = doc.fork();
        keystroke(&mut client, i)?;
        let chunks = automerge::sync::ChunkList::from(vec![client.save_after(&doc.get_heads())]);
        let started = Instant::now();
        let accepted = rapporteur::docs::schema::accept(
            rapporteur::store::DocKind::Group(1),
            doc,
            &chunks,
            &writer,
            &mut identities,
            &mut refused,
        )
        .map_err(|refusal| anyhow::anyhow!("keystroke refused: {refusal}"))?
        .context("keystroke not applied")?;
        if i > 0 {
            times.push(started.elapsed());
        }
        anyhow::ensure!(
            accepted.doc.get_heads() == client.get_heads(),
            "the keystroke did not reach the checked document"
        );
    }
    let mut timed = ms(&mut times);
    timed["changes"] = doc.get_changes(&[]).len().into();
    Ok(timed)
}

/// A rapporteur's keystrokes through the document's actor, over the store `store` holds the
/// document in (loaded first, not timed): from the writer's message carrying one keystroke to
/// the server's answer, which comes once the change is checked, durably stored and received.
/// The writer's device is a full automerge peer in step with the document; each answer is
/// checked to name the device's heads.
async fn time_writer_keystrokes(
    store: std::sync::Arc<dyn Store>,
    id: &DocId,
    repeat: usize,
) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let state = registry(store.clone(), dir.path()).await?;
    let (invite, _) = rapporteur::admin::create_invite(
        store.as_ref(),
        "http://127.0.0.1:1",
        rapporteur::admin::NewInvite {
            meeting: rapporteur::meeting::DEMO_SLUG.into(),
            role: rapporteur::meeting::Role::Rapporteur,
            group: Some(1),
            name: "Rapporteur".into(),
            expires_in_hours: None,
        },
    )
    .await?;
    let person = rapporteur::auth::Person {
        id: invite.id,
        meeting: invite.meeting,
        role: invite.role,
        group: invite.group,
        name: invite.name,
    };
    let (link, mut rx) = peer_link(&state, 1, person);
    let mut device = Automerge::load(&state.docs.read(id, |d| d.save()).await?)?;
    let mut sync_state = automerge::sync::State::new();
    let mut times = Vec::with_capacity(repeat);
    // In step first.
    while let Some((answer, _)) =
        exchange(&state, id, &link, &mut rx, &mut device, &mut sync_state).await?
    {
        device.receive_sync_message(&mut sync_state, answer)?;
    }
    for i in 0..repeat {
        keystroke(&mut device, i)?;
        let (answer, elapsed) = exchange(&state, id, &link, &mut rx, &mut device, &mut sync_state)
            .await?
            .context("the device sends its keystroke")?;
        times.push(elapsed);
        anyhow::ensure!(
            answer.heads == device.get_heads(),
            "the answer does not name the device's heads"
        );
        device.receive_sync_message(&mut sync_state, answer)?;
        while let Some((answer, _)) =
            exchange(&state, id, &link, &mut rx, &mut device, &mut sync_state).await?
        {
            device.receive_sync_message(&mut sync_state, answer)?;
        }
    }
    state.shutdown.cancel();
    let mut timed = ms(&mut times);
    timed["changes"] = device.get_changes(&[]).len().into();
    Ok(timed)
}

/// Sends `device`'s sync message to the document's actor as `link`, if it has one: the answer,
/// and the time it took.
async fn exchange(
    state: &rapporteur::AppState,
    id: &DocId,
    link: &std::sync::Arc<rapporteur::docs::PeerLink>,
    rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
    device: &mut Automerge,
    sync_state: &mut automerge::sync::State,
) -> anyhow::Result<Option<(automerge::sync::Message, Duration)>> {
    use rapporteur::docs::{Access, DocCommand};
    let Some(msg) = device.generate_sync_message(sync_state) else {
        return Ok(None);
    };
    let cmd = DocCommand::Sync {
        link: link.clone(),
        access: Access::Write,
        data: msg.encode(),
    };
    let (frame, elapsed) = ask(state, id, cmd, rx).await?;
    Ok(Some((sync_message(&frame)?, elapsed)))
}

/// The sync message a frame from the server carries.
fn sync_message(frame: &[u8]) -> anyhow::Result<automerge::sync::Message> {
    use rapporteur::sync::protocol::ClientMessage;
    let ClientMessage::Sync { data, .. } = ClientMessage::decode(frame)? else {
        anyhow::bail!("the answer is not a sync message");
    };
    Ok(automerge::sync::Message::decode(&data)?)
}

/// Compacting the document as the server keeps it (a snapshot and `increments` after it) into
/// one snapshot, `docs::compact`, each time over a fresh store: saving the document the actor
/// holds in memory (`doc`, in step with the store), and loading the stored chunks to save them.
async fn time_compactions(
    doc: &Automerge,
    snapshot: &[Vec<u8>],
    increments: &[Vec<u8>],
    repeat: usize,
) -> anyhow::Result<serde_json::Value> {
    use rapporteur::docs::Compacted;
    let mut report = serde_json::Map::new();
    for (name, held, expect) in [
        ("from_memory", Some(doc), Compacted::FromMemory),
        ("from_chunks", None, Compacted::FromChunks),
    ] {
        let mut times = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let (_dir, store, id) = store_with(increments, snapshot).await?;
            let started = Instant::now();
            let did = rapporteur::docs::compact(store.as_ref(), &id, held.cloned()).await?;
            times.push(started.elapsed());
            anyhow::ensure!(did == expect, "compaction took the other way: {did:?}");
            let chunks = store.load_chunks(&id).await?;
            anyhow::ensure!(
                chunks.len() == 1,
                "{} chunks after compaction",
                chunks.len()
            );
            anyhow::ensure!(
                load_doc(&chunks)?.get_heads() == doc.get_heads(),
                "the snapshot lost changes"
            );
        }
        report.insert(name.into(), ms(&mut times));
    }
    Ok(report.into())
}

/// The median and the slowest of some timings, in milliseconds.
fn ms(v: &mut [Duration]) -> serde_json::Value {
    v.sort();
    serde_json::json!({
        "median_ms": v[v.len() / 2].as_secs_f64() * 1e3,
        "max_ms": v[v.len() - 1].as_secs_f64() * 1e3,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let built = Instant::now();
    let mut doc = loadgen_outcome()?;
    let base = vec![doc.save()];
    let base_changes = doc.get_changes(&[]).len();
    let chunks = type_into(&mut doc, cli.changes)?;
    let expect = base_changes + cli.changes;
    let build_s = built.elapsed().as_secs_f64();

    // As the server keeps it: a snapshot of all but the last increments, then those.
    let keep = cli.increments.min(chunks.len());
    let cut = chunks.len() - keep;
    let mut head = Automerge::load(&base[0])?;
    for c in &chunks[..cut] {
        head.load_incremental(c)?;
    }
    let snapshot = vec![head.save()];
    let (_d1, store1, id1) = store_with(&chunks[cut..], &snapshot).await?;
    let compacted = time_loads(store1.as_ref(), &id1, cli.repeat, expect).await?;

    // Before the joins, whose edits move the document on from the devices' copies.
    let behind = doc
        .fork_at(&[automerge::Change::try_from(&chunks[chunks.len() - 1 - BEHIND][..])?.hash()])?;
    let mut returning = time_returning(store1.clone(), &id1, &doc, &behind, cli.repeat).await?;
    returning["behind"]["missed"] = BEHIND.into();
    let joins = time_joins(store1.clone(), &id1, cli.joins).await?;
    // The same document a tenth of the way through, and whole.
    let mut tenth = Automerge::load(&base[0])?;
    for c in &chunks[..chunks.len() / 10] {
        tenth.load_incremental(c)?;
    }
    let compactions = time_compactions(&doc, &snapshot, &chunks[cut..], cli.repeat.min(5)).await?;
    let keystrokes = serde_json::json!([
        time_keystrokes(&tenth, cli.keystrokes)?,
        time_keystrokes(&doc, cli.keystrokes)?,
    ]);
    let (_d3, store3, id3) = store_with(&[], &[tenth.save()]).await?;
    let writer_keystrokes = serde_json::json!([
        time_writer_keystrokes(store3, &id3, cli.keystrokes).await?,
        time_writer_keystrokes(store1.clone(), &id1, cli.keystrokes).await?,
    ]);

    let (_d2, store2, id2) = store_with(&chunks, &base).await?;
    // Far past its compaction: the server waits for the load and sends automerge's save.
    let uncompacted = time_loads(store2.as_ref(), &id2, cli.repeat, expect).await?;

    let report = serde_json::json!({
        "changes": expect,
        "snapshot_bytes": snapshot[0].len(),
        "build_s": build_s,
        "compacted": compacted,
        "joins": joins,
        "keystrokes": keystrokes,
        "writer_keystrokes": writer_keystrokes,
        "compactions": compactions,
        "returning": returning,
        "uncompacted": uncompacted,
    });
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &cli.out {
        std::fs::write(path, &text)?;
    }
    println!("{text}");
    Ok(())
}

/// The group outcome shape, as the server creates it.
fn loadgen_outcome() -> anyhow::Result<Automerge> {
    let mut doc = automerge::AutoCommit::new();
    doc.put(ROOT, "schema", "rapporteur.group-outcome")?;
    doc.put(ROOT, "schemaVersion", 1)?;
    doc.put(ROOT, "meeting", "coldload")?;
    let sections = doc.put_object(ROOT, "sections", ObjType::List)?;
    for (i, id) in ["commitments", "means", "follow-up"].iter().enumerate() {
        let s = doc.insert_object(&sections, i, ObjType::Map)?;
        doc.put(&s, "id", *id)?;
        doc.put(&s, "title", *id)?;
        doc.put_object(&s, "bullets", ObjType::List)?;
    }
    Ok(doc.document().clone())
}

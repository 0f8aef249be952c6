//! Compaction against a real SQLite store: the snapshot holds exactly the changes of the chunks
//! it replaces, whichever document it is saved from.

use automerge::transaction::Transactable;
use automerge::{Automerge, Change, ReadDoc, ROOT};

use super::{compact, load_doc, Compacted};
use crate::ids::DocId;
use crate::store::Store;

/// A fresh SQLite store with the demo meeting, and its first group's document.
async fn store() -> (tempfile::TempDir, std::sync::Arc<dyn Store>, DocId) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("compact.db").display());
    let store = crate::store::open(&url).await.unwrap();
    crate::admin::bootstrap_demo(store.as_ref(), "http://127.0.0.1:1")
        .await
        .unwrap();
    let groups = store.groups(crate::meeting::DEMO_SLUG).await.unwrap();
    let id = groups[0].doc.clone();
    (dir, store, id)
}

async fn stored(store: &dyn Store, id: &DocId) -> Automerge {
    load_doc(&store.load_chunks(id).await.unwrap()).unwrap()
}

/// A change on top of `doc`, made by an editor of its own.
fn edit(doc: &Automerge, value: &str) -> Change {
    let mut editor = doc.fork();
    editor
        .transact(|tx| tx.put(ROOT, "note", value))
        .map_err(|f| f.error)
        .unwrap();
    editor.get_changes(&doc.get_heads()).remove(0)
}

async fn append(store: &dyn Store, id: &DocId, change: &Change) {
    store
        .append_chunks(&[(id.clone(), change.raw_bytes().to_vec())])
        .await
        .unwrap();
}

#[tokio::test]
async fn the_snapshot_holds_exactly_the_stored_changes() {
    let (_dir, store, id) = store().await;
    let store = store.as_ref();

    // The document in memory holds what is stored: it is saved, and nothing changes.
    let mut held = stored(store, &id).await;
    for i in 0..3 {
        let change = edit(&held, &format!("stored {i}"));
        append(store, &id, &change).await;
        held.apply_changes([change]).unwrap();
    }
    assert_eq!(
        compact(store, &id, Some(held.clone())).await.unwrap(),
        Compacted::FromMemory
    );
    assert_eq!(store.load_chunks(&id).await.unwrap().len(), 1);
    assert_eq!(stored(store, &id).await.get_heads(), held.get_heads());

    // Stored meanwhile by another node, not yet in memory: the chunks are loaded instead.
    let theirs = edit(&held, "another node's");
    append(store, &id, &theirs).await;
    assert_eq!(
        compact(store, &id, Some(held.clone())).await.unwrap(),
        Compacted::FromChunks
    );
    let after = stored(store, &id).await;
    assert!(after.get_change_by_hash(&theirs.hash()).is_some());
    held.apply_changes([theirs]).unwrap();

    // In memory but not stored (which the actor never lets happen): not in the snapshot.
    let unstored = edit(&held, "never stored");
    let stored_one = edit(&held, "stored");
    append(store, &id, &stored_one).await;
    let mut ahead = held.clone();
    ahead.apply_changes([stored_one.clone()]).unwrap();
    ahead.apply_changes([unstored.clone()]).unwrap();
    assert_eq!(
        compact(store, &id, Some(ahead)).await.unwrap(),
        Compacted::FromChunks
    );
    let after = stored(store, &id).await;
    assert!(after.get_change_by_hash(&unstored.hash()).is_none());
    held.apply_changes([stored_one]).unwrap();

    // A change waiting in memory for its dependency is unchecked: automerge would save it with
    // the document, and apply it once the dependency came. The chunks are loaded instead.
    let dependency = edit(&held, "dependency");
    let mut next = held.clone();
    next.apply_changes([dependency.clone()]).unwrap();
    let waiting = edit(&next, "waiting");
    let filler = edit(&held, "filler");
    append(store, &id, &filler).await;
    held.apply_changes([filler]).unwrap();
    held.apply_changes([waiting.clone()]).unwrap();
    assert!(held.get_change_by_hash(&waiting.hash()).is_none());
    assert_eq!(
        compact(store, &id, Some(held)).await.unwrap(),
        Compacted::FromChunks
    );
    let mut after = stored(store, &id).await;
    after.apply_changes([dependency]).unwrap();
    assert!(after.get_change_by_hash(&waiting.hash()).is_none());
}

//! The sync endpoint: `automerge-repo` peers over WebSocket.
//!
//! `protocol` is the wire format; `chunks` checks the size of the changes in a sync message
//! before automerge reads them; `connection` runs one WebSocket (authentication happened at
//! the HTTP upgrade); `limits` bounds what one client may use; the documents' actors
//! (`crate::docs`) do the Automerge sync itself. This module also keeps the live connections
//! per person, so that revoking an invite ends them.

pub mod chunks;
pub mod connection;
pub mod limits;
pub mod protocol;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::ids::{PeerId, PersonId};

/// How this server presents itself to peers.
pub struct ServerIdentity {
    pub peer_id: PeerId,
    /// Stable per database: clients key their saved sync state by it.
    pub storage_id: String,
    /// Per process: with `next_count`, makes the server's ephemeral messages unique.
    pub session_id: String,
    count: AtomicU64,
}

impl ServerIdentity {
    pub fn new(storage_id: String) -> Self {
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            peer_id: PeerId(format!("rapporteur-{}", &session_id[..12])),
            storage_id,
            session_id,
            count: AtomicU64::new(0),
        }
    }

    pub fn next_count(&self) -> u64 {
        self.count.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Live connections by person.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    // std Mutex: held only to edit the map, never across an await.
    by_person: Mutex<HashMap<PersonId, Vec<(u64, CancellationToken)>>>,
}

impl Connections {
    pub fn register(&self, person: &PersonId, close: CancellationToken) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut map = self.by_person.lock().expect("connections lock");
        map.entry(person.clone()).or_default().push((id, close));
        id
    }

    pub fn unregister(&self, person: &PersonId, id: u64) {
        let mut map = self.by_person.lock().expect("connections lock");
        if let Some(list) = map.get_mut(person) {
            list.retain(|(c, _)| *c != id);
            if list.is_empty() {
                map.remove(person);
            }
        }
    }

    /// Ends every live connection of `person`; returns how many there were.
    pub fn close_person(&self, person: &PersonId) -> usize {
        let list = self
            .by_person
            .lock()
            .expect("connections lock")
            .remove(person)
            .unwrap_or_default();
        for (_, close) in &list {
            close.cancel();
        }
        list.len()
    }
}

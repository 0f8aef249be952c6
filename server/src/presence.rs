//! Live counts of connected editors and viewers per document, per meeting.
//!
//! Document actors report their node's counts here; with several nodes, the other nodes'
//! counts arrive through the cluster channel and are added in. The meeting's index document
//! actor watches the summed table and sends it to its peers as server `ephemeral` messages, so
//! that the counts never grow any document's history.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::ids::DocId;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub editors: u32,
    pub viewers: u32,
}

pub type Table = Arc<BTreeMap<DocId, Counts>>;

struct Meeting {
    tx: watch::Sender<Table>,
    local: BTreeMap<DocId, Counts>,
    /// Other nodes' counts, with when each node last reported.
    remote: HashMap<String, (BTreeMap<DocId, Counts>, Instant)>,
}

impl Meeting {
    fn new() -> Self {
        Self {
            tx: watch::channel(Table::default()).0,
            local: BTreeMap::new(),
            remote: HashMap::new(),
        }
    }

    fn publish(&self) {
        let mut sum = self.local.clone();
        for (counts, _) in self.remote.values() {
            for (doc, c) in counts {
                let e = sum.entry(doc.clone()).or_default();
                e.editors += c.editors;
                e.viewers += c.viewers;
            }
        }
        sum.retain(|_, c| *c != Counts::default());
        self.tx.send_if_modified(|table| {
            if **table == sum {
                return false;
            }
            *table = Arc::new(sum);
            true
        });
    }
}

fn put(map: &mut BTreeMap<DocId, Counts>, doc: &DocId, counts: Counts) {
    if counts == Counts::default() {
        map.remove(doc);
    } else {
        map.insert(doc.clone(), counts);
    }
}

#[derive(Default)]
pub struct Presence {
    // std Mutex: held only to update maps, never across an await.
    meetings: Mutex<HashMap<String, Meeting>>,
}

impl Presence {
    fn with<T>(&self, meeting: &str, f: impl FnOnce(&mut Meeting) -> T) -> T {
        let mut map = self.meetings.lock().expect("presence lock");
        f(map.entry(meeting.to_owned()).or_insert_with(Meeting::new))
    }

    /// This node's counts for a document.
    pub fn set(&self, meeting: &str, doc: &DocId, counts: Counts) {
        self.with(meeting, |m| {
            put(&mut m.local, doc, counts);
            m.publish();
        });
    }

    /// Another node's counts for a document.
    pub fn set_remote(&self, node: &str, meeting: &str, doc: &DocId, counts: Counts) {
        self.with(meeting, |m| {
            let entry = m
                .remote
                .entry(node.to_owned())
                .or_insert_with(|| (BTreeMap::new(), Instant::now()));
            put(&mut entry.0, doc, counts);
            entry.1 = Instant::now();
            m.publish();
        });
    }

    /// Forgets nodes that have not reported for `max_age` (they died or lost the channel).
    pub fn expire(&self, max_age: Duration) {
        let mut map = self.meetings.lock().expect("presence lock");
        for m in map.values_mut() {
            let before = m.remote.len();
            m.remote.retain(|_, (_, at)| at.elapsed() <= max_age);
            if m.remote.len() != before {
                m.publish();
            }
        }
    }

    /// This node's counts, for republishing: (meeting, document, counts).
    pub fn local(&self) -> Vec<(String, DocId, Counts)> {
        let map = self.meetings.lock().expect("presence lock");
        map.iter()
            .flat_map(|(meeting, m)| {
                m.local
                    .iter()
                    .map(move |(d, c)| (meeting.clone(), d.clone(), *c))
            })
            .collect()
    }

    pub fn subscribe(&self, meeting: &str) -> watch::Receiver<Table> {
        self.with(meeting, |m| m.tx.subscribe())
    }

    /// The CBOR payload of a presence message: `{type: "presence", docs: {id: {editors, viewers}}}`.
    pub fn encode(table: &Table) -> Vec<u8> {
        use ciborium::Value;
        let text = |s: &str| Value::Text(s.to_owned());
        let docs = table
            .iter()
            .map(|(id, c)| {
                (
                    text(id.as_str()),
                    Value::Map(vec![
                        (text("editors"), Value::Integer(c.editors.into())),
                        (text("viewers"), Value::Integer(c.viewers.into())),
                    ]),
                )
            })
            .collect();
        let payload = Value::Map(vec![
            (text("type"), text("presence")),
            (text("docs"), Value::Map(docs)),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&payload, &mut out).expect("writing to a Vec cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_change_and_disappear() {
        let p = Presence::default();
        let mut rx = p.subscribe("m");
        let doc = DocId::random();
        p.set(
            "m",
            &doc,
            Counts {
                editors: 1,
                viewers: 2,
            },
        );
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            rx.borrow_and_update().get(&doc),
            Some(&Counts {
                editors: 1,
                viewers: 2
            })
        );
        // Same counts again: no wake-up.
        p.set(
            "m",
            &doc,
            Counts {
                editors: 1,
                viewers: 2,
            },
        );
        assert!(!rx.has_changed().unwrap());
        p.set("m", &doc, Counts::default());
        assert!(rx.borrow_and_update().is_empty());
    }

    #[test]
    fn other_nodes_are_added_in_and_expire() {
        let p = Presence::default();
        let rx = p.subscribe("m");
        let doc = DocId::random();
        p.set(
            "m",
            &doc,
            Counts {
                editors: 1,
                viewers: 0,
            },
        );
        p.set_remote(
            "b",
            "m",
            &doc,
            Counts {
                editors: 2,
                viewers: 5,
            },
        );
        assert_eq!(
            rx.borrow().get(&doc),
            Some(&Counts {
                editors: 3,
                viewers: 5
            })
        );
        p.expire(Duration::ZERO);
        assert_eq!(
            rx.borrow().get(&doc),
            Some(&Counts {
                editors: 1,
                viewers: 0
            })
        );
        assert_eq!(p.local().len(), 1);
    }
}

//! Live counts of connected editors and viewers per document, per meeting.
//!
//! Document actors report their counts here; the meeting's index document actor watches the
//! table and sends it to its peers as server `ephemeral` messages, so that the counts never
//! grow any document's history.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::ids::DocId;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub editors: u32,
    pub viewers: u32,
}

pub type Table = Arc<BTreeMap<DocId, Counts>>;

#[derive(Default)]
pub struct Presence {
    // std Mutex: held only to update a map, never across an await.
    meetings: Mutex<HashMap<String, watch::Sender<Table>>>,
}

impl Presence {
    fn sender(
        map: &mut HashMap<String, watch::Sender<Table>>,
        meeting: &str,
    ) -> watch::Sender<Table> {
        map.entry(meeting.to_owned())
            .or_insert_with(|| watch::channel(Table::default()).0)
            .clone()
    }

    pub fn set(&self, meeting: &str, doc: &DocId, counts: Counts) {
        let tx = Self::sender(&mut self.meetings.lock().expect("presence lock"), meeting);
        tx.send_if_modified(|table| {
            let current = table.get(doc).copied().unwrap_or_default();
            if current == counts {
                return false;
            }
            let mut next = (**table).clone();
            if counts == Counts::default() {
                next.remove(doc);
            } else {
                next.insert(doc.clone(), counts);
            }
            *table = Arc::new(next);
            true
        });
    }

    pub fn subscribe(&self, meeting: &str) -> watch::Receiver<Table> {
        Self::sender(&mut self.meetings.lock().expect("presence lock"), meeting).subscribe()
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
}

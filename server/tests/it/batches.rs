//! Messages that reach a document's actor together are checked and stored together, then
//! answered as they would be one at a time: a writer always hears that its changes were stored.
//!
//! The device here is linked straight to the server's document registry, without a socket, so
//! that two of its messages are sure to be queued before the actor takes either.

use std::sync::Arc;

use automerge::sync::{self, SyncDoc};
use automerge::Automerge;
use rapporteur::docs::{Access, DocCommand, Docs, Outbox, PeerLink};
use rapporteur::ids::{DocId, PeerId};
use rapporteur::meeting::Role;
use rapporteur::sync::protocol::ClientMessage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::forged::add_bullet;
use crate::support::*;

/// A rapporteur's device of group 1, holding its outcome as stored, in step with the server.
struct Device {
    docs: Docs,
    id: DocId,
    link: Arc<PeerLink>,
    frames: mpsc::Receiver<Vec<u8>>,
    doc: Automerge,
    state: sync::State,
    person: String,
}

impl Device {
    async fn in_step(server: &TestServer) -> Self {
        let token = server.invite(Role::Rapporteur, Some(1)).await;
        let person = rapporteur::auth::person_for_token(server.state.store.as_ref(), &token)
            .await
            .unwrap();
        let (outbox, frames) =
            Outbox::new(64, CancellationToken::new(), server.state.metrics.clone());
        let id = DocId::parse(&server.group_doc(1).await).unwrap();
        let saved = server.state.docs.read(&id, |d| d.save()).await.unwrap();
        let mut device = Self {
            docs: server.state.docs.clone(),
            id,
            link: Arc::new(PeerLink {
                conn: u64::MAX,
                peer_id: PeerId("device-in-batches".into()),
                person: Arc::new(person.clone()),
                outbox,
            }),
            frames,
            doc: Automerge::load(&saved).unwrap(),
            state: sync::State::new(),
            person: person.id.0,
        };
        while let Some(msg) = device.doc.generate_sync_message(&mut device.state) {
            device.send(msg).await;
            let answer = device
                .answer()
                .await
                .expect("an answer to the first contact");
            device
                .doc
                .receive_sync_message(&mut device.state, answer)
                .unwrap();
        }
        device
    }

    /// Queues a message for the document's actor. The document is loaded, so the message is
    /// queued when this returns, before the actor (on this test's one thread) takes anything.
    async fn send(&self, msg: sync::Message) {
        let cmd = DocCommand::Sync {
            link: self.link.clone(),
            access: Access::Write,
            data: msg.encode(),
        };
        self.docs.send(&self.id, cmd).await.unwrap();
    }

    /// The server's next sync message to this device, if one comes in time.
    async fn answer(&mut self) -> Option<sync::Message> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.frames.recv())
                .await
                .ok()??;
            if let Ok(ClientMessage::Sync { data, .. }) = ClientMessage::decode(&frame) {
                return Some(sync::Message::decode(&data).unwrap());
            }
        }
    }
}

#[tokio::test]
async fn a_writer_whose_heads_came_before_its_change_in_one_batch_hears_it_was_stored() {
    let server = TestServer::start().await;
    let mut device = Device::in_step(&server).await;

    // The device types. Its client names the new heads but leaves the change out, as it does
    // when the server's Bloom filter wrongly says the server holds it; the change follows in
    // the next message. Both reach the actor together.
    let me = device.person.clone();
    add_bullet(
        &mut device.doc,
        "b-batched",
        "Open regular pathways",
        &me,
        "proposed",
    );
    let with_change = device
        .doc
        .generate_sync_message(&mut device.state)
        .expect("the device sends its change");
    assert_eq!(with_change.changes.len(), 1);
    let heads_only = sync::Message {
        heads: with_change.heads.clone(),
        need: with_change.need.clone(),
        have: with_change.have.clone(),
        changes: sync::ChunkList::from(Vec::<Vec<u8>>::new()),
        flags: with_change.flags,
        version: with_change.version.clone(),
    };
    device.send(heads_only).await;
    device.send(with_change).await;

    // The server stores the change and says so: an answer names the device's heads.
    let heads = device.doc.get_heads();
    loop {
        let answer = device
            .answer()
            .await
            .expect("no answer named the heads of the stored change");
        let told = answer.heads == heads;
        device
            .doc
            .receive_sync_message(&mut device.state, answer)
            .unwrap();
        if told {
            break;
        }
        if let Some(msg) = device.doc.generate_sync_message(&mut device.state) {
            device.send(msg).await;
        }
    }
    let stored = server
        .state
        .docs
        .read(&device.id, |d| d.get_heads())
        .await
        .unwrap();
    assert_eq!(stored, heads);
}

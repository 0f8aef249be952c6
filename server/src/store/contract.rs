//! The store contract: what every `Store` implementation must do, run against each of them.
//! SQLite always; further backends add their constructor to `backends()`.

use super::*;
use crate::admin;
use crate::meeting::MeetingFile;

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    (Arc::new(SqliteStore::open(&url).await.unwrap()), dir)
}

use std::sync::Arc;

async fn demo(store: &dyn Store) -> MeetingRecord {
    admin::create_meeting(store, MeetingFile::demo())
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_meets_the_contract() {
    let url = testing::fresh_postgres_database().await;
    let store = PostgresStore::open(&url).await.unwrap();
    run_contract(&store).await;
    // The chunk notices reach a subscriber, after the commit.
    let mut events = store
        .subscribe()
        .await
        .unwrap()
        .expect("PostgreSQL is shared");
    let m = store.meetings().await.unwrap().remove(0);
    store
        .append_chunks(&[(m.index_doc.clone(), vec![1])])
        .await
        .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
        .await
        .expect("a notice in time")
        .unwrap();
    assert!(
        matches!(event, ClusterEvent::Chunk { ref doc, seq: 2 } if *doc == m.index_doc),
        "{event:?}"
    );
}

#[tokio::test]
async fn sqlite_meets_the_contract() {
    let (store, _dir) = sqlite().await;
    run_contract(store.as_ref()).await;
}

pub async fn run_contract(store: &dyn Store) {
    store.ping().await.unwrap();

    // Settings keep their first value.
    assert_eq!(store.init_setting("k", "a").await.unwrap(), "a");
    assert_eq!(store.init_setting("k", "b").await.unwrap(), "a");

    // Meetings: created once, slug unique.
    let m = demo(store).await;
    assert!(matches!(
        admin::create_meeting(store, MeetingFile::demo()).await,
        Err(admin::AdminError::Exists)
    ));
    assert_eq!(store.meetings().await.unwrap().len(), 1);
    let loaded = store.meeting(&m.slug).await.unwrap().unwrap();
    assert_eq!(loaded.file, m.file);
    assert_eq!(loaded.index_doc, m.index_doc);
    let groups = store.groups(&m.slug).await.unwrap();
    assert_eq!(groups.len(), 6);
    assert!(groups.iter().all(|g| g.state == GroupState::Drafting));
    let doc = store.document(&groups[2].doc).await.unwrap().unwrap();
    assert_eq!(doc.kind, DocKind::Group(3));
    assert!(store.document(&DocId::random()).await.unwrap().is_none());

    // Chunks: append in order, compact a prefix atomically, keep later appends.
    let id = &groups[0].doc;
    let first = store.load_chunks(id).await.unwrap();
    assert_eq!(first.len(), 1);
    store
        .append_chunks(&[
            (id.clone(), vec![1]),
            (groups[1].doc.clone(), vec![9]),
            (id.clone(), vec![2]),
        ])
        .await
        .unwrap();
    let chunks = store.load_chunks(id).await.unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.data.clone()).collect::<Vec<_>>()[1..],
        [vec![1], vec![2]]
    );
    let upto = chunks[1].seq;
    store.compact(id, upto, &[7, 7]).await.unwrap();
    store.append_chunks(&[(id.clone(), vec![3])]).await.unwrap();
    let after: Vec<_> = store
        .load_chunks(id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.data)
        .collect();
    assert_eq!(after, [vec![7, 7], vec![2], vec![3]]);

    // Submissions: versions count up per group, and mark the group submitted.
    let sub = |group| SubmissionRecord {
        meeting: m.slug.clone(),
        group,
        version: 0,
        at: 1,
        by_person: "p".into(),
        by_name: "P".into(),
        heads: vec!["ab".into()],
        content_hash: "h".into(),
        override_rules: false,
    };
    assert_eq!(store.add_submission(&sub(1)).await.unwrap(), 1);
    assert_eq!(store.add_submission(&sub(1)).await.unwrap(), 2);
    assert_eq!(store.add_submission(&sub(2)).await.unwrap(), 1);
    let subs = store.submissions(&m.slug).await.unwrap();
    assert_eq!(
        subs.iter()
            .map(|s| (s.group, s.version))
            .collect::<Vec<_>>(),
        [(1, 1), (1, 2), (2, 1)]
    );
    assert_eq!(
        store.groups(&m.slug).await.unwrap()[0].state,
        GroupState::Submitted
    );
    store
        .set_group_state(&m.slug, 1, GroupState::Locked)
        .await
        .unwrap();
    assert_eq!(
        store.groups(&m.slug).await.unwrap()[0].state,
        GroupState::Locked
    );
    assert!(matches!(
        store.set_group_state(&m.slug, 99, GroupState::Locked).await,
        Err(StoreError::NotFound)
    ));

    // Invites and sessions: found by hash, revocation ends sessions.
    let (invite, url) = admin::create_invite(
        store,
        "http://x",
        admin::NewInvite {
            meeting: m.slug.clone(),
            role: Role::Rapporteur,
            group: Some(1),
            name: "Ana".into(),
            expires_in_hours: None,
        },
    )
    .await
    .unwrap();
    let token = url.rsplit('/').next().unwrap();
    let found = store
        .invite_by_token(&crate::auth::hash_token(token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.clone(), found.group, found.role),
        (invite.id.clone(), Some(1), Role::Rapporteur)
    );
    store.create_session(b"s1", &invite.id, 5).await.unwrap();
    assert_eq!(store.session(b"s1").await.unwrap().unwrap().id, invite.id);
    assert!(store.revoke_invite(&invite.id, 9).await.unwrap());
    assert!(!store.revoke_invite(&invite.id, 10).await.unwrap());
    assert!(store.session(b"s1").await.unwrap().is_none());
    assert_eq!(
        store.invite(&invite.id).await.unwrap().unwrap().revoked_at,
        Some(9)
    );
    assert_eq!(store.invites(&m.slug).await.unwrap().len(), 1);

    // Actor claims: first writer wins, per document; a claim never changes.
    let (other, _) = admin::create_invite(
        store,
        "http://x",
        admin::NewInvite {
            meeting: m.slug.clone(),
            role: Role::Rapporteur,
            group: Some(1),
            name: "Ben".into(),
            expires_in_hours: None,
        },
    )
    .await
    .unwrap();
    let doc = &groups[0].doc;
    assert!(store.document_actors(doc).await.unwrap().is_empty());
    let (a1, a2) = ("aa01".to_owned(), "aa02".to_owned());
    let owners = store
        .claim_actors(doc, &[a1.clone(), a2.clone()], &invite.id, 20)
        .await
        .unwrap();
    assert_eq!(owners, [invite.id.clone(), invite.id.clone()]);
    // Claiming again is harmless; another person gets the first claimant back.
    let a3 = "aa03".to_owned();
    let owners = store
        .claim_actors(doc, &[a1.clone(), a3.clone()], &other.id, 21)
        .await
        .unwrap();
    assert_eq!(owners, [invite.id.clone(), other.id.clone()]);
    let claims = store.document_actors(doc).await.unwrap();
    assert_eq!(
        claims,
        [
            ActorClaim {
                actor: a1.clone(),
                person: invite.id.clone()
            },
            ActorClaim {
                actor: a2,
                person: invite.id.clone()
            },
            ActorClaim {
                actor: a3,
                person: other.id.clone()
            },
        ]
    );
    // Claims are per document: the same actor id is free in another document.
    let owners = store
        .claim_actors(&groups[1].doc, &[a1], &other.id, 22)
        .await
        .unwrap();
    assert_eq!(owners, [other.id]);
    assert_eq!(
        store.document_actors(&groups[1].doc).await.unwrap().len(),
        1
    );
}

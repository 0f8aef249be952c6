//! The schema checks, sans I/O: documents built the way the server builds them, changed the
//! way a client would.

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ReadDoc, ROOT};

use super::*;
use crate::docs::init;
use crate::meeting::MeetingFile;

fn outcome() -> Automerge {
    let meeting = MeetingFile::demo();
    Automerge::load(&init::group_outcome(&meeting, &meeting.groups[0]).unwrap()).unwrap()
}

fn summary() -> Automerge {
    Automerge::load(&init::chair_summary(&MeetingFile::demo()).unwrap()).unwrap()
}

/// Applies `f` as a client would and returns the changed copy and the new changes.
fn edit(
    doc: &Automerge,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
) -> (Automerge, Vec<Change>) {
    let mut client = doc.fork();
    let before = client.get_heads();
    client.transact(|tx| f(tx)).map_err(|f| f.error).unwrap();
    let changes = client.get_changes(&before);
    let mut after = doc.clone();
    after.apply_changes(changes.clone()).unwrap();
    (after, changes)
}

fn bullets(tx: &impl ReadDoc, section: usize) -> automerge::ObjId {
    let sections = tx.get(ROOT, "sections").unwrap().unwrap().1;
    let s = tx.get(&sections, section).unwrap().unwrap().1;
    tx.get(&s, "bullets").unwrap().unwrap().1
}

fn add_bullet(
    tx: &mut automerge::transaction::Transaction<'_>,
    id: &str,
    by: &str,
    status: &str,
) -> Result<(), AutomergeError> {
    let list = bullets(tx, 0);
    let at = tx.length(&list);
    let b = tx.insert_object(&list, at, ObjType::Map)?;
    tx.put(&b, "id", id)?;
    let t = tx.put_object(&b, "text", ObjType::Text)?;
    tx.splice_text(&t, 0, 0, "Ensure access to justice")?;
    tx.put_object(&b, "proposedBy", ObjType::List)?;
    tx.put_object(&b, "tags", ObjType::List)?;
    tx.put(&b, "status", status)?;
    tx.put(&b, "createdBy", by)?;
    tx.put(&b, "createdAt", 1_i64)?;
    Ok(())
}

const GROUP: DocKind = DocKind::Group(1);

#[test]
fn a_new_bullet_by_its_writer_passes() {
    let doc = outcome();
    let (after, changes) = edit(&doc, |tx| add_bullet(tx, "b1", "alice", "proposed"));
    check_operations(GROUP, &after, &changes).unwrap();
    let ids = validate_outcome(&after, &bullet_identities(&doc), "alice").unwrap();
    assert_eq!(ids.get("b1"), Some(&("alice".to_owned(), 1)));
}

#[test]
fn server_owned_keys_are_refused() {
    let doc = outcome();
    let (after, changes) = edit(&doc, |tx| {
        let g = tx.get(ROOT, "group")?.unwrap().1;
        tx.put(&g, "dimension", "Hijacked")
    });
    let err = check_operations(GROUP, &after, &changes).unwrap_err();
    assert!(err.0.contains("group.dimension"), "{err}");
    let (after, changes) = edit(&doc, |tx| tx.put(ROOT, "extra", 1));
    assert!(check_operations(GROUP, &after, &changes).is_err());
    let (after, changes) = edit(&doc, |tx| {
        let sections = tx.get(ROOT, "sections")?.unwrap().1;
        tx.delete(&sections, 0)
    });
    assert!(check_operations(GROUP, &after, &changes).is_err());
}

#[test]
fn an_operation_that_loses_a_conflict_is_still_checked() {
    // The server sets the dimension; concurrently a writer sets it too. Whoever wins, the
    // writer's operation is in the document's history and must be refused.
    let doc = outcome();
    let (after, changes) = edit(&doc, |tx| {
        let g = tx.get(ROOT, "group")?.unwrap().1;
        tx.put(&g, "dimension", "Hidden")
    });
    let mut server = doc.clone();
    server
        .transact::<_, _, AutomergeError>(|tx| {
            let g = tx.get(ROOT, "group")?.unwrap().1;
            tx.put(&g, "dimension", "Official")
        })
        .unwrap();
    server.apply_changes(changes.clone()).unwrap();
    assert!(check_operations(GROUP, &server, &changes).is_err());
    drop(after);
}

#[test]
fn identity_fields_are_immutable_and_new_bullets_are_the_writers() {
    let doc = outcome();
    let (with_bullet, _) = edit(&doc, |tx| add_bullet(tx, "b1", "alice", "proposed"));
    let ids = bullet_identities(&with_bullet);

    // Changing createdBy of an existing bullet: refused by the path check.
    let (after, changes) = edit(&with_bullet, |tx| {
        let list = bullets(tx, 0);
        let b = tx.get(&list, 0)?.unwrap().1;
        tx.put(&b, "createdBy", "mallory")
    });
    assert!(check_operations(GROUP, &after, &changes).is_err());
    assert!(validate_outcome(&after, &ids, "mallory").is_err());

    // A new bullet claiming someone else as creator.
    let (after, changes) = edit(&with_bullet, |tx| add_bullet(tx, "b2", "alice", "proposed"));
    check_operations(GROUP, &after, &changes).unwrap();
    let err = validate_outcome(&after, &ids, "bob").unwrap_err();
    assert!(err.0.contains("createdBy"), "{err}");

    // A duplicate id.
    let (after, _) = edit(&with_bullet, |tx| add_bullet(tx, "b1", "bob", "proposed"));
    assert!(validate_outcome(&after, &ids, "bob").is_err());
}

#[test]
fn types_values_and_sizes_are_validated() {
    let doc = outcome();
    let ids = bullet_identities(&doc);
    let (after, _) = edit(&doc, |tx| add_bullet(tx, "b1", "alice", "maybe"));
    assert!(validate_outcome(&after, &ids, "alice")
        .unwrap_err()
        .0
        .contains("status"));

    let (after, _) = edit(&doc, |tx| {
        add_bullet(tx, "b1", "alice", "proposed")?;
        let list = bullets(tx, 0);
        let b = tx.get(&list, 0)?.unwrap().1;
        tx.put(&b, "text", 42)
    });
    assert!(validate_outcome(&after, &ids, "alice").is_err());

    let (after, _) = edit(&doc, |tx| {
        add_bullet(tx, "b1", "alice", "proposed")?;
        let list = bullets(tx, 0);
        let b = tx.get(&list, 0)?.unwrap().1;
        let t = tx.get(&b, "text")?.unwrap().1;
        tx.splice_text(&t, 0, 0, &"x".repeat(MAX_BULLET_CHARS))
    });
    assert!(validate_outcome(&after, &ids, "alice")
        .unwrap_err()
        .0
        .contains("longer"));

    let (after, _) = edit(&doc, |tx| {
        add_bullet(tx, "b1", "alice", "proposed")?;
        let list = bullets(tx, 0);
        let b = tx.get(&list, 0)?.unwrap().1;
        tx.put(&b, "color", "red")
    });
    assert!(validate_outcome(&after, &ids, "alice")
        .unwrap_err()
        .0
        .contains("unknown key"));
}

#[test]
fn strings_written_as_text_are_accepted() {
    // JavaScript clients write every string as collaborative text.
    let doc = outcome();
    let (after, changes) = edit(&doc, |tx| {
        let list = bullets(tx, 0);
        let b = tx.insert_object(&list, 0, ObjType::Map)?;
        for (key, value) in [
            ("id", "b1"),
            ("text", "Hello"),
            ("status", "agreed"),
            ("createdBy", "alice"),
        ] {
            let t = tx.put_object(&b, key, ObjType::Text)?;
            tx.splice_text(&t, 0, 0, value)?;
        }
        let p = tx.put_object(&b, "proposedBy", ObjType::List)?;
        let name = tx.insert_object(&p, 0, ObjType::Text)?;
        tx.splice_text(&name, 0, 0, "México")?;
        tx.put_object(&b, "tags", ObjType::List)?;
        tx.put(&b, "createdAt", 5_i64)
    });
    check_operations(GROUP, &after, &changes).unwrap();
    validate_outcome(&after, &bullet_identities(&doc), "alice").unwrap();
}

#[test]
fn the_index_is_never_writable_and_the_summary_only_in_its_parts() {
    let meeting = MeetingFile::demo();
    let index = Automerge::load(
        &init::meeting_index(
            &meeting,
            &[(1, crate::ids::DocId::random())],
            &crate::ids::DocId::random(),
        )
        .unwrap(),
    )
    .unwrap();
    let (after, changes) = edit(&index, |tx| tx.put(ROOT, "schemaVersion", 2));
    assert!(check_operations(DocKind::Index, &after, &changes).is_err());

    let doc = summary();
    let (after, changes) = edit(&doc, |tx| {
        let p = tx.get(ROOT, "preamble")?.unwrap().1;
        tx.splice_text(&p, 0, 0, "The co-facilitators")
    });
    check_operations(DocKind::Summary, &after, &changes).unwrap();
    validate_summary(&after).unwrap();
    let (after, changes) = edit(&doc, |tx| tx.put(ROOT, "state", "issued"));
    assert!(check_operations(DocKind::Summary, &after, &changes).is_err());
}

/// Adds an item to the summary's first section with `extra` keys set by `f`.
fn add_item(
    tx: &mut automerge::transaction::Transaction<'_>,
    f: impl FnOnce(
        &mut automerge::transaction::Transaction<'_>,
        &automerge::ObjId,
    ) -> Result<(), AutomergeError>,
) -> Result<(), AutomergeError> {
    let sections = tx.get(ROOT, "sections")?.unwrap().1;
    let s = tx.get(&sections, 0)?.unwrap().1;
    let items = tx.get(&s, "items")?.unwrap().1;
    let i = tx.insert_object(&items, 0, ObjType::Map)?;
    tx.put(&i, "id", "item-1")?;
    let t = tx.put_object(&i, "text", ObjType::Text)?;
    tx.splice_text(&t, 0, 0, "Protect the rights of migrants")?;
    let sources = tx.put_object(&i, "sources", ObjType::List)?;
    let src = tx.insert_object(&sources, 0, ObjType::Map)?;
    tx.put(&src, "group", 1)?;
    tx.put(&src, "bulletId", "b1")?;
    tx.put(&src, "version", 1)?;
    tx.put(&src, "text", "Protect rights")?;
    f(tx, &i)
}

#[test]
fn summary_items_carry_merge_flags_of_the_right_shape() {
    let doc = summary();
    let (after, changes) = edit(&doc, |tx| {
        add_item(tx, |tx, i| {
            tx.put(i, "mergedText", "Protect rights")?;
            let stale = tx.put_object(i, "stale", ObjType::List)?;
            let f = tx.insert_object(&stale, 0, ObjType::Map)?;
            tx.put(&f, "group", 1)?;
            tx.put(&f, "bulletId", "b1")?;
            tx.put(&f, "version", 2)?;
            tx.put(&f, "oldText", "Protect rights")?;
            tx.put(&f, "newText", "Protect all rights")?;
            Ok(())
        })
    });
    check_operations(DocKind::Summary, &after, &changes).unwrap();
    validate_summary(&after).unwrap();

    let (after, _) = edit(&doc, |tx| {
        add_item(tx, |tx, i| {
            let stale = tx.put_object(i, "stale", ObjType::List)?;
            let f = tx.insert_object(&stale, 0, ObjType::Map)?;
            tx.put(&f, "group", 1)?;
            tx.put(&f, "bulletId", "b1")?;
            tx.put(&f, "version", 2)?;
            tx.put(&f, "oldText", 7)?;
            tx.put(&f, "newText", "x")
        })
    });
    assert!(validate_summary(&after).unwrap_err().0.contains("oldText"));
    let (after, _) = edit(&doc, |tx| {
        add_item(tx, |tx, i| tx.put(i, "removedAtSource", "yes"))
    });
    assert!(validate_summary(&after).is_err());
    let (after, _) = edit(&doc, |tx| add_item(tx, |tx, i| tx.put(i, "colour", "red")));
    assert!(validate_summary(&after).unwrap_err().0.contains("colour"));
}

#[test]
fn an_issued_summary_accepts_no_change() {
    let mut doc = summary();
    doc.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "state", "issued"))
        .unwrap();
    let mut client = doc.fork();
    let before = client.get_heads();
    client
        .transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "title", "Changed"))
        .unwrap();
    let chunks = automerge::sync::ChunkList::from(
        client
            .get_changes(&before)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>(),
    );
    let err = accept(
        DocKind::Summary,
        &doc,
        &chunks,
        &Writer {
            person: "cofac",
            owners: &ActorOwners::new(),
        },
        &mut None,
        &mut Default::default(),
    )
    .unwrap_err();
    assert!(err.0.contains("issued"), "{err}");
}

/// The changes of `client` since `base`, as a sync message carries them.
fn chunks_since(client: &Automerge, base: &Automerge) -> automerge::sync::ChunkList {
    automerge::sync::ChunkList::from(
        client
            .get_changes(&base.get_heads())
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>(),
    )
}

#[test]
fn an_actor_is_its_first_writers_and_nobody_elses() {
    let doc = outcome();
    let mut owners = ActorOwners::new();
    let check = |doc: &Automerge,
                 client: &Automerge,
                 person: &str,
                 owners: &ActorOwners,
                 refused: &mut HashSet<ChangeHash>| {
        accept(
            GROUP,
            doc,
            &chunks_since(client, doc),
            &Writer { person, owners },
            &mut None,
            refused,
        )
    };
    let mut refused = HashSet::new();

    // Alice's first change: her actor is new here, so it becomes hers.
    let mut alice = doc.fork();
    alice
        .transact(|tx| add_bullet(tx, "b1", "alice", "proposed"))
        .unwrap();
    let accepted = check(&doc, &alice, "alice", &owners, &mut refused)
        .unwrap()
        .unwrap();
    assert_eq!(accepted.new_actors, [alice.get_actor().clone()]);
    owners.insert(alice.get_actor().clone(), "alice".into());
    let doc = accepted.doc;

    // Her next change: hers already, nothing new to record.
    alice
        .transact(|tx| add_bullet(tx, "b2", "alice", "agreed"))
        .unwrap();
    let accepted = check(&doc, &alice, "alice", &owners, &mut refused)
        .unwrap()
        .unwrap();
    assert!(accepted.new_actors.is_empty());

    // Bob writing with Alice's actor (the next sequence number, as a forger would) is refused,
    // and so is anything built on that change.
    let mut bob = doc.fork().with_actor(alice.get_actor().clone());
    bob.transact(|tx| add_bullet(tx, "b3", "bob", "proposed"))
        .unwrap();
    let err = check(&doc, &bob, "bob", &owners, &mut refused).unwrap_err();
    assert!(err.0.contains("another person"), "{err}");
    let forged = bob.get_heads()[0];
    assert!(refused.contains(&forged));

    // Nobody may continue the changes of an actor that nobody owns: here the server's, which
    // built the document.
    let server_actor = doc.get_changes(&[])[0].actor_id().clone();
    let mut mallory = doc.fork().with_actor(server_actor);
    mallory
        .transact(|tx| add_bullet(tx, "b4", "mallory", "proposed"))
        .unwrap();
    let err = check(&doc, &mallory, "mallory", &owners, &mut refused).unwrap_err();
    assert!(err.0.contains("not yours"), "{err}");
}

fn section_obj(tx: &impl ReadDoc, at: usize) -> automerge::ObjId {
    let sections = tx.get(ROOT, "sections").unwrap().unwrap().1;
    tx.get(&sections, at).unwrap().unwrap().1
}

fn add_section(
    tx: &mut automerge::transaction::Transaction<'_>,
    id: &str,
) -> Result<(), AutomergeError> {
    let sections = tx.get(ROOT, "sections")?.unwrap().1;
    let at = tx.length(&sections);
    let s = tx.insert_object(&sections, at, ObjType::Map)?;
    tx.put(&s, "id", id)?;
    tx.put(&s, "title", "Remittances")?;
    tx.put_object(&s, "items", ObjType::List)?;
    Ok(())
}

/// Moves the first item of section `from` to the end of section `to`, as the web app does.
fn move_first_item(
    tx: &mut automerge::transaction::Transaction<'_>,
    from: usize,
    to: usize,
) -> Result<(), AutomergeError> {
    let from = section_obj(tx, from);
    let items = tx.get(&from, "items")?.unwrap().1;
    let item = tx.get(&items, 0)?.unwrap().1;
    let text = tx.text(&tx.get(&item, "text")?.unwrap().1)?;
    tx.delete(&items, 0)?;
    let to = section_obj(tx, to);
    let dest = tx.get(&to, "items")?.unwrap().1;
    let at = tx.length(&dest);
    let i = tx.insert_object(&dest, at, ObjType::Map)?;
    tx.put(&i, "id", "item-1")?;
    let t = tx.put_object(&i, "text", ObjType::Text)?;
    tx.splice_text(&t, 0, 0, &text)?;
    tx.put_object(&i, "sources", ObjType::List)?;
    Ok(())
}

fn remove_section(
    tx: &mut automerge::transaction::Transaction<'_>,
    at: usize,
) -> Result<(), AutomergeError> {
    let sections = tx.get(ROOT, "sections")?.unwrap().1;
    tx.delete(&sections, at)
}

#[test]
fn co_facilitators_add_rename_and_remove_empty_thematic_sections() {
    let doc = summary();
    let (doc, changes) = edit(&doc, |tx| add_section(tx, "theme-1"));
    check_operations(DocKind::Summary, &doc, &changes).unwrap();
    validate_summary(&doc).unwrap();
    let theme = doc.length(&doc.get(ROOT, "sections").unwrap().unwrap().1) - 1;

    let (after, changes) = edit(&doc, |tx| {
        let s = section_obj(tx, theme);
        tx.put(&s, "title", "Remittances and inclusion")
    });
    check_operations(DocKind::Summary, &after, &changes).unwrap();
    validate_summary(&after).unwrap();

    // A section's id and its list of items are never replaced.
    let (after, changes) = edit(&doc, |tx| {
        let s = section_obj(tx, theme);
        tx.put(&s, "id", "x")
    });
    assert!(check_operations(DocKind::Summary, &after, &changes).is_err());
    let (after, changes) = edit(&doc, |tx| {
        let s = section_obj(tx, 0);
        tx.put_object(&s, "items", ObjType::List).map(|_| ())
    });
    assert!(check_operations(DocKind::Summary, &after, &changes).is_err());
    // Section ids are unique.
    let (after, _) = edit(&doc, |tx| add_section(tx, "theme-1"));
    assert!(validate_summary(&after).unwrap_err().0.contains("unique"));

    // An empty section goes; one with an item stays.
    let (after, changes) = edit(&doc, |tx| remove_section(tx, theme));
    check_operations(DocKind::Summary, &after, &changes).unwrap();
    let (with_item, _) = edit(&doc, |tx| add_item(tx, |_, _| Ok(())));
    let (after, changes) = edit(&with_item, |tx| remove_section(tx, 0));
    let err = check_operations(DocKind::Summary, &after, &changes).unwrap_err();
    assert!(err.0.contains("holds items"), "{err}");

    // Items move between sections.
    let (after, changes) = edit(&with_item, |tx| move_first_item(tx, 0, theme));
    check_operations(DocKind::Summary, &after, &changes).unwrap();
    validate_summary(&after).unwrap();
}

#[test]
fn an_item_moved_into_a_section_removed_meanwhile_is_refused_in_either_order() {
    let (base, _) = edit(&summary(), |tx| {
        add_section(tx, "theme-1")?;
        add_item(tx, |_, _| Ok(()))
    });
    let theme = base.length(&base.get(ROOT, "sections").unwrap().unwrap().1) - 1;
    let mut remover = base.fork();
    remover.transact(|tx| remove_section(tx, theme)).unwrap();
    let mut mover = base.fork();
    mover.transact(|tx| move_first_item(tx, 0, theme)).unwrap();
    let writer = Writer {
        person: "cofac",
        owners: &ActorOwners::new(),
    };

    // The removal first: the move would drop the item into the removed section.
    let server = accept(
        DocKind::Summary,
        &base,
        &chunks_since(&remover, &base),
        &writer,
        &mut None,
        &mut HashSet::new(),
    )
    .unwrap()
    .unwrap()
    .doc;
    let err = accept(
        DocKind::Summary,
        &server,
        &chunks_since(&mover, &base),
        &writer,
        &mut None,
        &mut HashSet::new(),
    )
    .unwrap_err();
    assert!(err.0.contains("removed meanwhile"), "{err}");

    // The move first: the section is no longer empty when the removal arrives.
    let server = accept(
        DocKind::Summary,
        &base,
        &chunks_since(&mover, &base),
        &writer,
        &mut None,
        &mut HashSet::new(),
    )
    .unwrap()
    .unwrap()
    .doc;
    let err = accept(
        DocKind::Summary,
        &server,
        &chunks_since(&remover, &base),
        &writer,
        &mut None,
        &mut HashSet::new(),
    )
    .unwrap_err();
    assert!(err.0.contains("holds items"), "{err}");
}

/// The text of bullet `i` of the first section.
fn bullet_text(doc: &impl ReadDoc, i: usize) -> automerge::ObjId {
    let list = bullets(doc, 0);
    let b = doc.get(&list, i).unwrap().unwrap().1;
    doc.get(&b, "text").unwrap().unwrap().1
}

/// The demo outcome with three of Alice's bullets, the last `len` characters long, accepted.
fn with_bullets(len: usize) -> (Automerge, ActorOwners) {
    let doc = outcome();
    let mut alice = doc.fork();
    alice
        .transact(|tx| {
            for id in ["b1", "b2", "b3"] {
                add_bullet(tx, id, "alice", "proposed")?;
            }
            let t = bullet_text(tx, 2);
            let have = tx.text(&t)?.chars().count();
            tx.splice_text(&t, 0, 0, &"x".repeat(len - have))
        })
        .map_err(|f| f.error)
        .unwrap();
    let mut owners = ActorOwners::new();
    let accepted = accept(
        GROUP,
        &doc,
        &chunks_since(&alice, &doc),
        &Writer {
            person: "alice",
            owners: &owners,
        },
        &mut None,
        &mut HashSet::new(),
    )
    .unwrap()
    .unwrap();
    owners.insert(alice.get_actor().clone(), "alice".into());
    (accepted.doc, owners)
}

#[test]
fn typing_into_a_bullet_is_checked_on_that_text_alone() {
    let (doc, owners) = with_bullets(MAX_BULLET_CHARS - 2);
    let alice =
        |f: &dyn Fn(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>| {
            let mut client = doc.fork();
            client.transact(|tx| f(tx)).map_err(|f| f.error).unwrap();
            client
        };
    let check = |client: &Automerge| {
        accept(
            GROUP,
            &doc,
            &chunks_since(client, &doc),
            &Writer {
                person: "alice",
                owners: &owners,
            },
            &mut None,
            &mut HashSet::new(),
        )
    };

    // Typing and deleting in two bullets: only those two texts are touched.
    let typed = alice(&|tx| {
        let t = bullet_text(tx, 0);
        tx.splice_text(&t, 3, 2, "ensure")?;
        let t = bullet_text(tx, 2);
        tx.splice_text(&t, 0, 0, "ab")
    });
    let (after, changes) = (
        check(&typed).unwrap().unwrap().doc,
        typed.get_changes(&doc.get_heads()),
    );
    let touched = check_operations(GROUP, &after, &changes).unwrap();
    assert!(!touched.beyond_texts);
    assert_eq!(touched.texts.len(), 2);
    assert_eq!(
        after.text(bullet_text(&after, 2)).unwrap().chars().count(),
        MAX_BULLET_CHARS
    );

    // One character too many is refused, as the whole document's check refuses it.
    let over = alice(&|tx| {
        let t = bullet_text(tx, 2);
        tx.splice_text(&t, 0, 0, "abc")
    });
    let err = check(&over).unwrap_err();
    let mut whole = doc.clone();
    whole
        .apply_changes(over.get_changes(&doc.get_heads()))
        .unwrap();
    let expected = validate_outcome(&whole, &bullet_identities(&doc), "alice").unwrap_err();
    assert_eq!(err, expected);

    // Anything else goes through the whole check: a status, a new text object, a number typed
    // into the text.
    let ids = bullet_identities(&doc);
    for client in [
        alice(&|tx| {
            let b = tx.get(bullets(tx, 0), 0)?.unwrap().1;
            tx.put(&b, "status", "maybe")
        }),
        alice(&|tx| {
            let b = tx.get(bullets(tx, 0), 1)?.unwrap().1;
            tx.put_object(&b, "text", ObjType::Text).map(|_| ())
        }),
        alice(&|tx| {
            let t = bullet_text(tx, 1);
            tx.insert(&t, 0, 42)
        }),
    ] {
        let mut after = doc.clone();
        let changes = client.get_changes(&doc.get_heads());
        after.apply_changes(changes.clone()).unwrap();
        assert!(
            check_operations(GROUP, &after, &changes)
                .unwrap()
                .beyond_texts
        );
        assert_eq!(
            check(&client).err(),
            validate_outcome(&after, &ids, "alice").err()
        );
    }
}

/// One editor's step in [`typing_is_judged_as_the_whole_document_check_judges_it`].
#[derive(Clone, Debug)]
enum Step {
    Type {
        bullet: usize,
        at: usize,
        text: String,
    },
    Delete {
        bullet: usize,
        at: usize,
        len: usize,
    },
    Status {
        bullet: usize,
        status: &'static str,
    },
    NewText {
        bullet: usize,
    },
    RemoveBullet {
        bullet: usize,
    },
}

fn step_strategy() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let bullet = 0..3usize;
    prop_oneof![
        6 => (bullet.clone(), any::<usize>(), "[a-zé ]{1,8}")
            .prop_map(|(bullet, at, text)| Step::Type { bullet, at, text }),
        3 => (bullet.clone(), any::<usize>(), 1..6usize)
            .prop_map(|(bullet, at, len)| Step::Delete { bullet, at, len }),
        1 => (bullet.clone(), prop::sample::select(vec!["agreed", "maybe"]))
            .prop_map(|(bullet, status)| Step::Status { bullet, status }),
        1 => bullet.clone().prop_map(|bullet| Step::NewText { bullet }),
        1 => bullet.prop_map(|bullet| Step::RemoveBullet { bullet }),
    ]
}

fn take_step(
    tx: &mut automerge::transaction::Transaction<'_>,
    step: &Step,
) -> Result<(), AutomergeError> {
    let list = bullets(tx, 0);
    let n = tx.length(&list);
    if n == 0 {
        return Ok(());
    }
    let bullet = |i: usize| tx.get(&list, i % n).map(|b| b.unwrap().1);
    match step {
        Step::Type {
            bullet: i,
            at,
            text,
        } => {
            let t = tx.get(&bullet(*i)?, "text")?.unwrap().1;
            let at = at % (tx.length(&t) + 1);
            tx.splice_text(&t, at, 0, text)
        }
        Step::Delete { bullet: i, at, len } => {
            let t = tx.get(&bullet(*i)?, "text")?.unwrap().1;
            let have = tx.length(&t);
            let at = at % (have + 1);
            tx.splice_text(&t, at, (*len).min(have - at) as isize, "")
        }
        Step::Status { bullet: i, status } => tx.put(&bullet(*i)?, "status", *status),
        Step::NewText { bullet: i } => {
            let t = tx.put_object(&bullet(*i)?, "text", ObjType::Text)?;
            tx.splice_text(&t, 0, 0, "Restated")
        }
        Step::RemoveBullet { bullet: i } => tx.delete(&list, i % n),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("RAPPORTEUR_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(96),
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Alice's batch, made on her copy while Bob's (accepted) changes reached the server first,
    /// is accepted or refused exactly as checking her operations and validating the whole
    /// resulting document would; batches that only type go the short way. Her bullets start a
    /// few characters short of the limit, so that both of them typing can cross it.
    #[test]
    fn typing_is_judged_as_the_whole_document_check_judges_it(
        theirs in proptest::collection::vec(step_strategy(), 0..4),
        ours in proptest::collection::vec(step_strategy(), 1..5),
    ) {
        static NEAR_LIMIT: std::sync::OnceLock<(Automerge, ActorOwners)> = std::sync::OnceLock::new();
        let (doc, owners) = NEAR_LIMIT.get_or_init(|| with_bullets(MAX_BULLET_CHARS - 12));
        let (doc, mut owners) = (doc.clone(), owners.clone());
        let mut alice = doc.fork();
        let mut bob = doc.fork();
        bob.transact(|tx| theirs.iter().try_for_each(|s| take_step(tx, s)))
            .map_err(|f| f.error)
            .unwrap();
        let base = match accept(GROUP, &doc, &chunks_since(&bob, &doc), &Writer { person: "bob", owners: &owners }, &mut None, &mut HashSet::new()) {
            Ok(Some(accepted)) => accepted.doc,
            _ => doc.clone(),
        };
        owners.insert(bob.get_actor().clone(), "bob".into());
        alice.transact(|tx| ours.iter().try_for_each(|s| take_step(tx, s)))
            .map_err(|f| f.error)
            .unwrap();
        let changes = alice.get_changes(&doc.get_heads());
        let mut whole = base.clone();
        whole.apply_changes(changes.clone()).unwrap();
        let expected = check_operations(GROUP, &whole, &changes)
            .and_then(|_| validate_outcome(&whole, &bullet_identities(&base), "alice"));
        let got = accept(GROUP, &base, &chunks_since(&alice, &doc), &Writer { person: "alice", owners: &owners }, &mut None, &mut HashSet::new());
        proptest::prop_assert_eq!(got.as_ref().err(), expected.as_ref().err());
        if let Ok(Some(accepted)) = got {
            proptest::prop_assert_eq!(accepted.doc.get_heads(), whole.get_heads());
        }
        let typing_only = ours.iter().all(|s| matches!(s, Step::Type { .. } | Step::Delete { .. }));
        if typing_only {
            proptest::prop_assert!(!check_operations(GROUP, &whole, &changes).unwrap().beyond_texts);
        }
    }
}

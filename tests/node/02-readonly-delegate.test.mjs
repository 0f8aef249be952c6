// Read-only enforcement at the sync protocol (DESIGN §3; docs/schema.md "Enforcement" step 1): a
// delegate may change its local copy of a group outcome, but the server never applies, stores or
// relays that change. Rapporteurs never receive it (checked after a later rapporteur edit has made
// the round trip to the delegate), and after a restart a fresh client does not see it either.
// The stock client only offers changes the server's sync state asks for, so a second test pushes
// the change unsolicited from a hand-driven peer: refused, the delegate told with an `error`
// naming the document, nothing relayed or stored.
import { test } from "node:test"
import assert from "node:assert/strict"
import {
  Env, A, addBullet, newBullet, rawPeer, findBullet, documentIdOf, sentSyncMessages, roundTrip, errorsIn, waitFor,
} from "../lib/clients.mjs"

test("a delegate's local change never reaches anyone, nor survives a restart", async t => {
  const env = await Env.start(t)
  const r1 = await env.person("rapporteur", { group: 1 })
  const r2 = await env.person("rapporteur", { group: 1 })
  const delegate = await env.person("delegate")
  const urls = await env.urls(r1.token)
  const docId = documentIdOf(urls.group[1])

  const c1 = await env.connect(r1)
  const c2 = await env.connect(r2)
  const cd = await env.connect(delegate)
  const h1 = await c1.find(urls.group[1])
  const h2 = await c2.find(urls.group[1])
  const hd = await cd.find(urls.group[1])

  const existing = addBullet(h1, r1.id, "Ensure access to basic services for all migrants")
  await waitFor(() => findBullet(hd.doc(), existing) && findBullet(h2.doc(), existing), {
    what: "everyone to see the rapporteur's first bullet",
  })

  // The delegate writes a new bullet and edits the existing one, in one change.
  const mark = cd.log.length
  const forbiddenId = "00000000-0000-4000-8000-00000000d31e"
  hd.change(d => {
    d.sections[0].bullets.push({
      id: new A.ImmutableString(forbiddenId),
      text: "DELEGATE-INSERTED proposal that must never be stored",
      proposedBy: [],
      tags: [],
      status: new A.ImmutableString("proposed"),
      createdBy: new A.ImmutableString(delegate.id),
      createdAt: Date.now(),
    })
    const i = d.sections[0].bullets.findIndex(b => String(b.id) === existing)
    A.splice(d, ["sections", 0, "bullets", i, "text"], 0, 0, "DELEGATE-EDIT ")
  })
  const forbiddenHeads = A.getHeads(hd.doc())
  assert.ok(findBullet(hd.doc(), forbiddenId), "the change exists in the delegate's own copy")

  // Barrier 1: the client sent its sync message, then a round trip on the same connection.
  await waitFor(() => sentSyncMessages(cd, docId, mark).length > 0, { what: "the client to send its change" })
  await roundTrip(cd, urls.summary)
  // Barrier 2: a later rapporteur edit makes it to the delegate (so anything the server relayed
  // before it has arrived everywhere).
  const later = addBullet(h2, r2.id, "Promote fair and ethical recruitment")
  await waitFor(() => findBullet(hd.doc(), later), { what: "the delegate to see the later rapporteur edit" })
  await waitFor(() => findBullet(h1.doc(), later), { what: "rapporteur 1 to see the later edit" })

  for (const [name, h] of [["rapporteur 1", h1], ["rapporteur 2", h2]]) {
    const doc = h.doc()
    assert.equal(findBullet(doc, forbiddenId), undefined, `${name} must not get the delegate's bullet`)
    assert.equal(findBullet(doc, existing).text, "Ensure access to basic services for all migrants",
      `${name} must not get the delegate's text edit`)
    assert.ok(!JSON.stringify(doc).includes("DELEGATE"), `${name}'s document carries nothing of the delegate`)
    assert.equal(A.hasHeads(doc, forbiddenHeads), false, `${name} must not have the delegate's change`)
  }

  // After a graceful restart, a fresh client gets the stored document: the rapporteurs' edits, not
  // the delegate's.
  assert.deepEqual([...errorsIn(c1), ...errorsIn(c2)], [], "the rapporteurs were sent no error")
  await env.restart()
  const fresh = await env.connect(await env.person("observer"))
  const hf = await fresh.find(urls.group[1])
  assert.ok(findBullet(hf.doc(), existing), "the rapporteur's bullet was stored")
  assert.ok(findBullet(hf.doc(), later), "the later rapporteur bullet was stored")
  assert.equal(findBullet(hf.doc(), forbiddenId), undefined, "the delegate's bullet was not stored")
  assert.equal(findBullet(hf.doc(), existing).text, "Ensure access to basic services for all migrants")
  assert.equal(A.hasHeads(hf.doc(), forbiddenHeads), false, "the delegate's change was not stored")

})

test("a change a delegate pushes unsolicited is refused with an error, never relayed or stored", async t => {
  const env = await Env.start(t)
  const r1 = await env.person("rapporteur", { group: 1 })
  const r2 = await env.person("rapporteur", { group: 1 })
  const delegate = await env.person("delegate")
  const urls = await env.urls(r1.token)
  const docId = documentIdOf(urls.group[1])

  const c1 = await env.connect(r1)
  const c2 = await env.connect(r2)
  const h1 = await c1.find(urls.group[1])
  const h2 = await c2.find(urls.group[1])
  const existing = addBullet(h1, r1.id, "Ensure access to basic services for all migrants")
  await waitFor(() => findBullet(h2.doc(), existing), { what: "rapporteur 2 to see the first bullet" })

  const peer = await rawPeer(env, delegate.token)
  await peer.load(docId, doc => findBullet(doc, existing))
  const pushed = newBullet(delegate.id, "PUSHED by a delegate over the wire")
  const forbiddenHeads = peer.push(docId, d => {
    d.sections[0].bullets.push(pushed)
  })

  // The server refuses it and says so, naming the document.
  const error = await waitFor(() => peer.errors()[0], { what: "an error message to the delegate" })
  assert.ok(
    error.documentId === docId || String(error.message ?? "").includes(docId),
    `the error names the document: ${JSON.stringify(error)}`,
  )

  // Barrier: a later rapporteur edit reaches the other rapporteur and the delegate's raw peer.
  const later = addBullet(h1, r1.id, "Promote fair and ethical recruitment")
  await waitFor(() => findBullet(h2.doc(), later), { what: "rapporteur 2 to see the later edit" })
  await waitFor(() => findBullet(peer.doc(docId), later), { what: "the raw peer to see the later edit" })
  for (const [name, h] of [["rapporteur 1", h1], ["rapporteur 2", h2]]) {
    assert.equal(findBullet(h.doc(), pushed.id.toString()), undefined, `${name} must not get the pushed bullet`)
    assert.equal(A.hasHeads(h.doc(), forbiddenHeads), false, `${name} must not have the pushed change`)
  }
  assert.deepEqual([...errorsIn(c1), ...errorsIn(c2)], [], "the rapporteurs were sent no error")

  await env.restart()
  const fresh = await env.connect(await env.person("observer"))
  const hf = await fresh.find(urls.group[1])
  assert.ok(findBullet(hf.doc(), later), "the rapporteurs' edits were stored")
  assert.equal(findBullet(hf.doc(), pushed.id.toString()), undefined, "the pushed bullet was not stored")
  assert.equal(A.hasHeads(hf.doc(), forbiddenHeads), false, "the pushed change was not stored")
})

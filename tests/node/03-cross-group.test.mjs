// Per-group write access (DESIGN §3: a rapporteur writes group N only; docs/schema.md
// "Enforcement"): a rapporteur of group 1 who changes group 2's outcome has that change refused —
// group 2's rapporteur never receives it and it is not stored (checked after a restart) — while
// the same person's edits to group 1, on the same connection, go through. A second test pushes
// the change unsolicited from a hand-driven peer (the stock client only offers what the server's
// sync state asks for): refused with an error, never relayed or stored.
import { test } from "node:test"
import assert from "node:assert/strict"
import { Env, A, addBullet, newBullet, rawPeer, findBullet, documentIdOf, sentSyncMessages, roundTrip, waitFor } from "../lib/clients.mjs"

test("a group 1 rapporteur cannot change group 2, but edits group 1", async t => {
  const env = await Env.start(t)
  const r1 = await env.person("rapporteur", { group: 1 })
  const r2 = await env.person("rapporteur", { group: 2 })
  const delegate = await env.person("delegate")
  const urls = await env.urls(r1.token)
  assert.notEqual(urls.group[1], urls.group[2])
  const g2 = documentIdOf(urls.group[2])

  const c1 = await env.connect(r1)
  const c2 = await env.connect(r2)
  const cd = await env.connect(delegate)
  const r1g1 = await c1.find(urls.group[1])
  const r1g2 = await c1.find(urls.group[2]) // read access to every group
  const r2g2 = await c2.find(urls.group[2])
  const dg1 = await cd.find(urls.group[1])
  const dg2 = await cd.find(urls.group[2])
  assert.equal(r1g2.doc().group.number, 2)

  // Group 2's own rapporteur writes first: that goes through.
  const legit2 = addBullet(r2g2, r2.id, "Facilitate the portability of social security benefits")
  await waitFor(() => findBullet(r1g2.doc(), legit2) && findBullet(dg2.doc(), legit2), {
    what: "group 2's bullet to reach the group 1 rapporteur and the delegate",
  })

  // The group 1 rapporteur adds a bullet to group 2.
  const mark = c1.log.length
  const intrusion = addBullet(r1g2, r1.id, "INTRUSION from group 1 into group 2")
  const intrusionHeads = A.getHeads(r1g2.doc())
  // Barrier: the client sent its sync message, then a round trip on the same connection.
  await waitFor(() => sentSyncMessages(c1, g2, mark).length > 0, { what: "the client to send its change" })
  await roundTrip(c1, urls.summary)

  // Meanwhile their group 1 edit goes through to the delegate.
  const own = addBullet(r1g1, r1.id, "Combat xenophobia through evidence-based public discourse")
  await waitFor(() => findBullet(dg1.doc(), own), { what: "the group 1 edit to reach the delegate" })

  // Barrier on group 2: a later edit by group 2's rapporteur reaches the delegate.
  const later2 = addBullet(r2g2, r2.id, "Invest in skills development and recognition")
  await waitFor(() => findBullet(dg2.doc(), later2), { what: "the later group 2 edit to reach the delegate" })
  await waitFor(() => findBullet(r1g2.doc(), later2), { what: "the later group 2 edit to reach rapporteur 1" })

  for (const [name, doc] of [["group 2's rapporteur", r2g2.doc()], ["the delegate", dg2.doc()]]) {
    assert.equal(findBullet(doc, intrusion), undefined, `${name} must not get the intruding bullet`)
    assert.ok(!JSON.stringify(doc).includes("INTRUSION"), `${name}'s copy carries nothing of it`)
    assert.equal(A.hasHeads(doc, intrusionHeads), false, `${name} must not have the intruding change`)
  }

  await env.restart()
  const fresh = await env.connect(await env.person("observer"))
  const f1 = await fresh.find(urls.group[1])
  const f2 = await fresh.find(urls.group[2])
  assert.ok(findBullet(f1.doc(), own), "the group 1 edit was stored")
  assert.ok(findBullet(f2.doc(), legit2), "group 2's own edits were stored")
  assert.ok(findBullet(f2.doc(), later2), "group 2's own edits were stored")
  assert.equal(findBullet(f2.doc(), intrusion), undefined, "the intrusion was not stored")
  assert.equal(A.hasHeads(f2.doc(), intrusionHeads), false, "the intruding change was not stored")
})

test("a change a group 1 rapporteur pushes into group 2 is refused with an error", async t => {
  const env = await Env.start(t)
  const r1 = await env.person("rapporteur", { group: 1 })
  const r2 = await env.person("rapporteur", { group: 2 })
  const urls = await env.urls(r1.token)
  const g1 = documentIdOf(urls.group[1])
  const g2 = documentIdOf(urls.group[2])

  const c2 = await env.connect(r2)
  const r2g2 = await c2.find(urls.group[2])
  const peer = await rawPeer(env, r1.token)
  await peer.load(g1)
  await peer.load(g2)

  const intrusion = newBullet(r1.id, "PUSHED from group 1 into group 2")
  const intrusionHeads = peer.push(g2, d => {
    d.sections[0].bullets.push(intrusion)
  })
  const error = await waitFor(() => peer.errors()[0], { what: "an error message to the group 1 rapporteur" })
  assert.ok(error.documentId === g2 || String(error.message ?? "").includes(g2), `the error names group 2's document: ${JSON.stringify(error)}`)

  // The same peer's push to its own group is accepted (so the refusal above is about the group).
  const own = newBullet(r1.id, "Pushed into group 1 by its own rapporteur")
  peer.push(g1, d => {
    d.sections[0].bullets.push(own)
  })
  const observer = await env.connect(await env.person("observer"))
  const o1 = await observer.find(urls.group[1])
  await waitFor(() => findBullet(o1.doc(), own.id.toString()), { what: "the group 1 push to be accepted" })
  assert.equal(peer.errors().length, 1, `only the group 2 push was refused: ${JSON.stringify(peer.errors())}`)

  const later2 = addBullet(r2g2, r2.id, "Invest in skills development and recognition")
  await waitFor(() => findBullet(peer.doc(g2), later2), { what: "the later group 2 edit to reach the raw peer" })
  assert.equal(findBullet(r2g2.doc(), intrusion.id.toString()), undefined)
  assert.equal(A.hasHeads(r2g2.doc(), intrusionHeads), false)

  await env.restart()
  const fresh = await env.connect(await env.person("observer"))
  const f2 = await fresh.find(urls.group[2])
  assert.ok(findBullet(f2.doc(), later2))
  assert.equal(findBullet(f2.doc(), intrusion.id.toString()), undefined, "the intrusion was not stored")
  assert.equal(A.hasHeads(f2.doc(), intrusionHeads), false)
  const f1 = await fresh.find(urls.group[1])
  assert.ok(findBullet(f1.doc(), own.id.toString()), "the group 1 push was stored")
})

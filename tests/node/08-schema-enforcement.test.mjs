// Schema enforcement over sync (docs/schema.md "Action-group outcome", "Enforcement" steps 3-5):
// a change from a peer that may write the document is still refused, with an `error` naming the
// document, when it touches a server-owned or unknown key, breaks a type or size rule, changes an
// immutable bullet field, or creates a bullet in someone else's name. Each violation is pushed by
// a rapporteur of group 1 from a hand-driven peer (so the change surely reaches the server); a
// valid push from the same kind of peer is the control. None of the refused changes reaches an
// observer or survives a restart.
import { test } from "node:test"
import assert from "node:assert/strict"
import { randomUUID } from "node:crypto"
import { Env, A, addBullet, newBullet, rawPeer, findBullet, plain, documentIdOf, waitFor } from "../lib/clients.mjs"

const S = s => new A.ImmutableString(s)

test("schema violations from an editor are refused; a valid change is accepted", async t => {
  const env = await Env.start(t)
  const r1 = await env.person("rapporteur", { group: 1 })
  const r2 = await env.person("rapporteur", { group: 1 })
  const urls = await env.urls(r1.token)
  const g1 = documentIdOf(urls.group[1])

  const c1 = await env.connect(r1)
  const h1 = await c1.find(urls.group[1])
  const existing = addBullet(h1, r1.id, "Ensure access to basic services for all migrants", {
    proposedBy: ["Mexico", "Switzerland"],
    tags: ["gcm-objective-15"],
  })
  const observer = await env.connect(await env.person("observer"))
  const ho = await observer.find(urls.group[1])
  await waitFor(() => findBullet(ho.doc(), existing), { what: "the observer to see the first bullet" })
  const before = plain(ho.doc())

  // Each case changes the document as loaded (the only bullet is sections[0].bullets[0]).
  const cases = {
    "a new bullet created in another person's name": d => {
      d.sections[0].bullets.push(newBullet(r2.id, "VIOLATION someone else's name"))
    },
    "changing a bullet's id": d => {
      d.sections[0].bullets[0].id = S(randomUUID())
    },
    "changing a bullet's createdBy": d => {
      d.sections[0].bullets[0].createdBy = S(r2.id)
    },
    "changing a bullet's createdAt": d => {
      d.sections[0].bullets[0].createdAt = 1
    },
    "a duplicate bullet id": d => {
      const b = newBullet(r1.id, "VIOLATION duplicate id")
      b.id = S(existing)
      d.sections[0].bullets.push(b)
    },
    "writing the server-owned group number": d => {
      d.group.number = 7
    },
    "writing the server-owned schema key": d => {
      d.schema = S("rapporteur.something-else")
    },
    "renaming a section": d => {
      d.sections[0].title = S("VIOLATION renamed")
    },
    "removing a section": d => {
      d.sections.splice(d.sections.length - 1, 1)
    },
    "adding a section": d => {
      d.sections.push({ id: S("violation"), title: S("VIOLATION"), bullets: [] })
    },
    "an unknown key on a bullet": d => {
      d.sections[0].bullets[0].colour = S("red")
    },
    "an unknown top-level key": d => {
      d.violation = S("x")
    },
    "a status outside proposed/agreed/bracketed": d => {
      d.sections[0].bullets[0].status = S("done")
    },
    "a status of the wrong type": d => {
      d.sections[0].bullets[0].status = 3
    },
    "a bullet text over 5,000 characters": d => {
      d.sections[0].bullets.push(newBullet(r1.id, "v".repeat(5001)))
    },
    "a proposedBy entry over 120 characters": d => {
      d.sections[0].bullets[0].proposedBy.push(S("V".repeat(121)))
    },
    "more than 100 proposedBy entries": d => {
      d.sections[0].bullets.push(newBullet(r1.id, "VIOLATION proposers", {
        proposedBy: Array.from({ length: 101 }, (_, i) => `Delegation ${i}`),
      }))
    },
    "more than 30 tags": d => {
      d.sections[0].bullets.push(newBullet(r1.id, "VIOLATION tags", {
        tags: Array.from({ length: 31 }, (_, i) => `tag-${i}`),
      }))
    },
    "a tag over 64 characters": d => {
      d.sections[0].bullets[0].tags.push(S("t".repeat(65)))
    },
    "a bullet without a status": d => {
      const b = newBullet(r1.id, "VIOLATION no status")
      delete b.status
      d.sections[0].bullets.push(b)
    },
    "a createdAt that is not an integer": d => {
      const b = newBullet(r1.id, "VIOLATION createdAt")
      b.createdAt = S("yesterday")
      d.sections[0].bullets.push(b)
    },
    "a bullet text that is a scalar string, not Text": d => {
      const b = newBullet(r1.id, "placeholder")
      b.text = S("VIOLATION scalar text")
      d.sections[0].bullets.push(b)
    },
  }

  const refusedHeads = []
  for (const [name, violate] of Object.entries(cases)) {
    await t.test(name, async () => {
      const peer = await rawPeer(env, r1.token)
      await peer.load(g1, doc => findBullet(doc, existing))
      refusedHeads.push([name, peer.push(g1, violate)])
      const error = await waitFor(() => peer.errors()[0], { timeout: 5_000, what: `an error for: ${name}` })
      assert.ok(
        error.documentId === g1 || String(error.message ?? "").includes(g1),
        `the error names the document: ${JSON.stringify(error)}`,
      )
      peer.raw.ws.close()
    })
  }

  // The control: the same kind of peer, a valid change, accepted without error.
  const control = newBullet(r1.id, "Promote fair and ethical recruitment", { tags: ["gcm-objective-6"] })
  const peer = await rawPeer(env, r1.token)
  await peer.load(g1, doc => findBullet(doc, existing))
  peer.push(g1, d => {
    d.sections[0].bullets.push(control)
  })
  await waitFor(() => findBullet(ho.doc(), control.id.toString()), { what: "the observer to see the valid push" })
  assert.deepEqual(peer.errors(), [], "the valid push drew no error")

  // Nothing refused reached the observer: its document is the one before plus the control bullet.
  const expected = structuredClone(before)
  expected.sections[0].bullets.push(findBullet(ho.doc(), control.id.toString()))
  delete expected.sections[0].bullets[1].sectionIndex
  assert.deepEqual(plain(ho.doc()), expected)
  for (const [name, heads] of refusedHeads) {
    assert.equal(A.hasHeads(ho.doc(), heads), false, `the observer has the refused change: ${name}`)
  }

  await env.restart()
  const fresh = await env.connect(await env.person("observer"))
  const hf = await fresh.find(urls.group[1])
  assert.deepEqual(plain(hf.doc()), expected, "the stored document has none of the refused changes")
  for (const [name, heads] of refusedHeads) {
    assert.equal(A.hasHeads(hf.doc(), heads), false, `stored the refused change: ${name}`)
  }
})

// Live co-editing of a group outcome (DESIGN §2, §4; docs/schema.md "Action-group outcome"):
// two rapporteurs of group 1, each on their own stock automerge-repo client, add bullets and splice
// into the same bullet's text at the same moment; both copies converge to the same document that
// keeps both writers' words, and a delegate's read-only client sees every edit live.
import { test } from "node:test"
import assert from "node:assert/strict"
import { Env, A, addBullet, spliceBullet, findBullet, allBullets, plain, sameDoc, waitFor } from "../lib/clients.mjs"

test("two rapporteurs co-edit group 1 concurrently and converge; a delegate sees it live", async t => {
  const env = await Env.start(t)
  const r1 = await env.person("rapporteur", { group: 1, name: "Rapporteur One" })
  const r2 = await env.person("rapporteur", { group: 1, name: "Rapporteur Two" })
  const delegate = await env.person("delegate", { name: "Delegate of Peru" })
  const urls = await env.urls(r1.token)
  assert.ok(urls.group[1], "GET /api/meetings/{slug} gives group 1's outcomeDocUrl")

  const c1 = await env.connect(r1)
  const c2 = await env.connect(r2)
  const cd = await env.connect(delegate)
  const h1 = await c1.find(urls.group[1])
  const h2 = await c2.find(urls.group[1])
  const hd = await cd.find(urls.group[1])

  assert.equal(String(h1.doc().schema), "rapporteur.group-outcome")
  assert.ok(h1.doc().sections.length >= 1, "the outcome has its sections")

  // A shared bullet both will edit.
  const shared = addBullet(h1, r1.id, "Strengthen regular pathways for labour migration")
  await waitFor(() => findBullet(h2.doc(), shared), { what: "rapporteur 2 to see the shared bullet" })

  // Concurrent edits: both clients change their copy before either hears of the other's change.
  const a = addBullet(h1, r1.id, "Expand consular assistance along migration routes")
  const b = addBullet(h2, r2.id, "Improve data on remittance costs", { sectionIndex: 0 })
  spliceBullet(h1, shared, 0, 0, "Jointly ")
  spliceBullet(h2, shared, -1, 0, " and skills partnerships")

  const expectedText = "Jointly Strengthen regular pathways for labour migration and skills partnerships"
  const complete = doc => {
    const s = findBullet(doc, shared)
    return findBullet(doc, a) && findBullet(doc, b) && s?.text === expectedText
  }
  await waitFor(() => complete(h1.doc()) && complete(h2.doc()), {
    what: "both rapporteurs to have both bullets and both splices",
  })
  await waitFor(() => sameDoc(h1.doc(), h2.doc()), { what: "the two copies to be equal" })
  assert.deepEqual(plain(h1.doc()), plain(h2.doc()))
  assert.deepEqual([...A.getHeads(h1.doc())].sort(), [...A.getHeads(h2.doc())].sort())

  // Each bullet kept its author and fields.
  const ba = findBullet(h2.doc(), a)
  const bb = findBullet(h1.doc(), b)
  assert.equal(ba.createdBy, r1.id)
  assert.equal(bb.createdBy, r2.id)
  assert.equal(ba.text, "Expand consular assistance along migration routes")
  assert.equal(bb.text, "Improve data on remittance costs")
  assert.equal(allBullets(h1.doc()).length, 3)

  // The delegate's copy follows live and ends equal to the rapporteurs'.
  await waitFor(() => complete(hd.doc()), { what: "the delegate to see every edit" })
  await waitFor(() => sameDoc(hd.doc(), h1.doc()), { what: "the delegate's copy to equal the rapporteurs'" })

  // Both insert at the very same position of the same text at once: both insertions are kept,
  // whole, in the same order on every copy.
  const mid = "Jointly Strengthen regular".length
  spliceBullet(h1, shared, mid, 0, " [safe]")
  spliceBullet(h2, shared, mid, 0, " [orderly]")
  const bothKept = doc => {
    const text = findBullet(doc, shared)?.text ?? ""
    return text.includes(" [safe]") && text.includes(" [orderly]")
  }
  await waitFor(() => bothKept(h1.doc()) && bothKept(h2.doc()) && bothKept(hd.doc()), {
    what: "both same-position insertions everywhere",
  })
  await waitFor(() => sameDoc(h1.doc(), h2.doc()) && sameDoc(h1.doc(), hd.doc()), { what: "convergence again" })
  const merged = findBullet(h1.doc(), shared).text
  assert.equal(merged.length, expectedText.length + " [safe]".length + " [orderly]".length)
  assert.ok(
    merged.startsWith("Jointly Strengthen regular [safe] [orderly] pathways") ||
      merged.startsWith("Jointly Strengthen regular [orderly] [safe] pathways"),
    merged,
  )

  // A further edit arrives at the delegate as a change event, not only on reload.
  let seen = false
  hd.on("change", ({ doc }) => {
    if (findBullet(doc, shared)?.text.endsWith("by 2030")) seen = true
  })
  spliceBullet(h2, shared, -1, 0, " by 2030")
  await waitFor(() => seen, { what: "a change event at the delegate" })
})

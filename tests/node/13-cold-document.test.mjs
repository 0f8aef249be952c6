// A document nobody has open, with a day's worth of typing behind it (after a restart, say): a new
// device on the stock automerge-repo client is answered from the stored chunks while the server
// loads the document (docs/protocol.md), holds every change, and the exchange goes on from there
// in both directions.
import { test } from "node:test"
import assert from "node:assert/strict"
import { Env, A, addBullet, spliceBullet, findBullet, plain, sameDoc, waitFor } from "../lib/clients.mjs"

/** The value of a counter on /metrics. */
async function counter(env, name) {
  const text = await (await fetch(`${env.server.url}/metrics`)).text()
  const line = text.split("\n").find(l => l.startsWith(`${name} `))
  assert.ok(line, `${name} on /metrics`)
  return Number(line.split(" ")[1])
}

test("a new device gets a cold document from storage and goes on syncing", async t => {
  const env = await Env.start(t)
  const rapporteur = await env.person("rapporteur", { group: 1 })
  const urls = await env.urls(rapporteur.token)
  const cr = await env.connect(rapporteur)
  const hr = await cr.find(urls.group[1])

  // Twenty bullets typed a keystroke at a time: over a thousand changes.
  const ids = []
  for (let i = 0; i < 20; i++) ids.push(addBullet(hr, rapporteur.id, `Commitment ${i}:`))
  for (let k = 0; k < 60; k++) {
    for (const id of ids) spliceBullet(hr, id, -1, 0, String(k % 10))
  }
  const expected = plain(hr.doc())
  const expectedHeads = [...A.getHeads(hr.doc())].sort().join()
  const watcher = await env.connect(await env.person("observer"))
  const hw = await watcher.find(urls.group[1])
  await waitFor(() => [...A.getHeads(hw.doc())].sort().join() === expectedHeads, {
    timeout: 30_000,
    what: "the server to hold every change",
  })

  await env.restart()
  assert.equal(await counter(env, "rapporteur_answered_before_load_total"), 0)

  const delegate = await env.person("delegate")
  const cd = await env.connect(delegate)
  const hd = await cd.find(urls.group[1])
  await waitFor(() => [...A.getHeads(hd.doc())].sort().join() === expectedHeads, {
    what: "the new device to hold every change",
  })
  assert.deepEqual(plain(hd.doc()), expected)
  assert.equal(await counter(env, "rapporteur_answered_before_load_total"), 1, "answered from storage")

  // The exchange goes on: a rapporteur's edit reaches the delegate, and the delegate's device,
  // read-only, converges with the rapporteur's.
  const cr2 = await env.connect(rapporteur)
  const hr2 = await cr2.find(urls.group[1])
  const id = addBullet(hr2, rapporteur.id, "Agreed after the restart")
  spliceBullet(hr2, ids[0], -1, 0, " and more")
  await waitFor(() => findBullet(hd.doc(), id) && sameDoc(hd.doc(), hr2.doc()), {
    what: "the delegate to see the rapporteur's edits",
  })
  assert.equal(findBullet(hd.doc(), ids[0]).text.endsWith(" and more"), true)
})

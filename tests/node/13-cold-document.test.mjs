// A document nobody has open, with a day's worth of typing behind it (after a restart, say):
// devices on the stock automerge-repo client that hold nothing of it, or kept it on disk (in step
// with it, or behind), are answered from the stored chunks while the server loads the document
// (docs/protocol.md), and the exchange goes on from there in both directions.
import { test } from "node:test"
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import {
  Env,
  A,
  addBullet,
  spliceBullet,
  findBullet,
  plain,
  sameDoc,
  waitFor,
  documentIdOf,
} from "../lib/clients.mjs"

/** The value of a counter on /metrics. */
async function counter(env, name) {
  const text = await (await fetch(`${env.server.url}/metrics`)).text()
  const line = text.split("\n").find(l => l.startsWith(`${name} `))
  assert.ok(line, `${name} on /metrics`)
  return Number(line.split(" ")[1])
}

test("devices that hold nothing of a cold document, or a copy in step or behind, are answered from storage and go on syncing", async t => {
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
  const expectedHeads = [...A.getHeads(hr.doc())].sort().join()
  const watcher = await env.connect(await env.person("observer"))
  const hw = await watcher.find(urls.group[1])
  await waitFor(() => [...A.getHeads(hw.doc())].sort().join() === expectedHeads, {
    timeout: 30_000,
    what: "the server to hold every change",
  })

  // A delegate's laptop follows it too, keeping it on disk.
  const disk = mkdtempSync(path.join(tmpdir(), "rapporteur-device-"))
  t.after(() => rmSync(disk, { recursive: true, force: true }))
  const laptop = await env.person("delegate")
  const cl = await env.connect(laptop, { storage: new NodeFSStorageAdapter(disk) })
  const hl = await cl.find(urls.group[1])
  await waitFor(() => [...A.getHeads(hl.doc())].sort().join() === expectedHeads, {
    what: "the laptop to hold every change",
  })

  // After a restart the laptop comes back, its copy in step with the server's: answered before
  // the load, with the heads it holds and nothing else.
  await env.restart()
  assert.equal(await counter(env, "rapporteur_answered_before_load_total"), 0)
  const back = await env.connect(laptop, { storage: new NodeFSStorageAdapter(disk) })
  const hb = await back.find(urls.group[1])
  assert.equal([...A.getHeads(hb.doc())].sort().join(), expectedHeads, "the copy on disk")
  const docId = documentIdOf(urls.group[1])
  const answers = () => back.log.filter(f => f.dir === "in" && f.msg.type === "sync" && f.msg.documentId === docId)
  await waitFor(() => answers().length > 0, { what: "the server's answer to the laptop" })
  assert.equal(await counter(env, "rapporteur_answered_before_load_total"), 1, "answered from storage")
  const answer = A.decodeSyncMessage(answers()[0].msg.data)
  assert.equal([...answer.heads].sort().join(), expectedHeads)
  assert.equal(answer.changes.length, 0)

  // A rapporteur's edit reaches it.
  const cr1 = await env.connect(rapporteur)
  const hr1 = await cr1.find(urls.group[1])
  const first = addBullet(hr1, rapporteur.id, "Agreed after the first restart")
  await waitFor(() => findBullet(hb.doc(), first) && sameDoc(hb.doc(), hr1.doc()), {
    what: "the laptop to see the rapporteur's edit",
  })

  // The laptop closes; the rapporteur goes on. After a restart the laptop comes back behind, and
  // is sent what it missed before the load.
  await env.disconnect(back)
  const away = addBullet(hr1, rapporteur.id, "Agreed while the laptop was away")
  const headsAway = [...A.getHeads(hr1.doc())].sort().join()
  const observer = await env.connect(await env.person("observer"))
  const ho = await observer.find(urls.group[1])
  await waitFor(() => [...A.getHeads(ho.doc())].sort().join() === headsAway, {
    what: "the server to hold the rapporteur's edit",
  })
  await env.restart()
  const again = await env.connect(laptop, { storage: new NodeFSStorageAdapter(disk) })
  const ha = await again.find(urls.group[1])
  assert.equal(findBullet(ha.doc(), away), undefined, "the laptop's copy is behind")
  await waitFor(() => [...A.getHeads(ha.doc())].sort().join() === headsAway, {
    what: "the laptop to get what it missed",
  })
  assert.ok(findBullet(ha.doc(), away))
  assert.equal(await counter(env, "rapporteur_answered_before_load_total"), 1, "answered from storage")
  const expectedNow = plain(ha.doc())
  const headsNow = headsAway

  await env.restart()
  assert.equal(await counter(env, "rapporteur_answered_before_load_total"), 0)

  const delegate = await env.person("delegate")
  const cd = await env.connect(delegate)
  const hd = await cd.find(urls.group[1])
  await waitFor(() => [...A.getHeads(hd.doc())].sort().join() === headsNow, {
    what: "the new device to hold every change",
  })
  assert.deepEqual(plain(hd.doc()), expectedNow)
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

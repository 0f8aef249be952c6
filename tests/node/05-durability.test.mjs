// Durability of acknowledged changes (DESIGN §4 "Durability", §5 "kill -9 at any moment loses no
// acknowledged change"): a change the server has passed on to another client was written to the
// database first, so after SIGKILL and a restart on the same database a fresh client finds every
// one of them, with the same heads.
import { test } from "node:test"
import assert from "node:assert/strict"
import { Env, A, addBullet, spliceBullet, findBullet, allBullets, plain, waitFor } from "../lib/clients.mjs"

test("every edit a viewer has seen survives SIGKILL", async t => {
  const env = await Env.start(t)
  const rapporteur = await env.person("rapporteur", { group: 1 })
  const delegate = await env.person("delegate")
  const urls = await env.urls(rapporteur.token)

  const cr = await env.connect(rapporteur)
  const cd = await env.connect(delegate)
  const hr = await cr.find(urls.group[1])
  const hd = await cd.find(urls.group[1])
  const sectionCount = hr.doc().sections.length

  // Many small changes, as typing makes them: new bullets in every section, then keystrokes.
  const ids = []
  for (let i = 0; i < 12; i++) {
    ids.push(addBullet(hr, rapporteur.id, `Durable proposal ${i}`, { sectionIndex: i % sectionCount }))
  }
  for (const [i, id] of ids.entries()) {
    for (const ch of ` typed-${i}`) spliceBullet(hr, id, -1, 0, ch)
  }
  hr.change(d => {
    d.sections[0].bullets[0].status = new A.ImmutableString("agreed")
    d.sections[0].bullets[0].tags.push(new A.ImmutableString("gcm-objective-5"))
  })
  const expected = plain(hr.doc())
  const expectedHeads = [...A.getHeads(hr.doc())].sort()

  // Acknowledged: the server has passed all of it on to the delegate.
  await waitFor(() => [...A.getHeads(hd.doc())].sort().join() === expectedHeads.join(), {
    what: "the delegate to have every change",
  })
  assert.deepEqual(plain(hd.doc()), expected)

  await env.restart({ kill: true })

  const fresh = await env.connect(await env.person("observer"))
  const hf = await fresh.find(urls.group[1])
  assert.deepEqual([...A.getHeads(hf.doc())].sort(), expectedHeads, "the same heads after SIGKILL")
  assert.deepEqual(plain(hf.doc()), expected, "the same content after SIGKILL")
  for (const [i, id] of ids.entries()) {
    assert.equal(findBullet(hf.doc(), id)?.text, `Durable proposal ${i} typed-${i}`)
  }
  assert.equal(allBullets(hf.doc()).length, ids.length)
  assert.equal(plain(hf.doc()).sections[0].bullets[0].status, "agreed")
})

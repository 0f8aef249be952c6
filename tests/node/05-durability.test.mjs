// Durability of acknowledged changes (DESIGN §4 "Durability", §5 "kill -9 at any moment loses no
// acknowledged change"): a change the server has passed on to another client was written to the
// database first, so after SIGKILL and a restart on the same database a fresh client finds every
// one of them, with the same heads. The second test kills the server in the middle of typing, at
// the moment a viewer has seen some of it: whatever the viewer holds then must all be stored.
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

test("SIGKILL in the middle of typing loses nothing a viewer has seen", async t => {
  const env = await Env.start(t)
  const rapporteur = await env.person("rapporteur", { group: 1 })
  const delegate = await env.person("delegate")
  const urls = await env.urls(rapporteur.token)

  const cr = await env.connect(rapporteur)
  const cd = await env.connect(delegate)
  const hr = await cr.find(urls.group[1])
  const hd = await cd.find(urls.group[1])
  const id = addBullet(hr, rapporteur.id, "Typed:")
  await waitFor(() => findBullet(hd.doc(), id), { what: "the delegate to see the bullet" })

  // Kill from inside the delegate's change handler, the moment it has seen 30 keystrokes.
  const server = env.server
  let killed = false
  hd.on("change", ({ doc }) => {
    if (!killed && (findBullet(doc, id)?.text.length ?? 0) >= "Typed:".length + 30) {
      killed = true
      server.child.kill("SIGKILL")
    }
  })
  let typed = 0
  while (!killed && typed < 2000) {
    spliceBullet(hr, id, -1, 0, String(typed % 10))
    typed++
    await new Promise(r => setTimeout(r, 5)) // typing pace, not a wait for a result
  }
  assert.ok(killed, "the delegate saw 30 keystrokes")
  await server.kill() // resolves once the process is gone

  // Everything the delegate holds came from the server, so the server had acknowledged it.
  const acked = A.getHeads(hd.doc())
  const ackedText = findBullet(hd.doc(), id).text
  await env.restart({ kill: true })

  const fresh = await env.connect(await env.person("observer"))
  const hf = await fresh.find(urls.group[1])
  assert.ok(A.hasHeads(hf.doc(), acked), "every change the delegate had seen is stored")
  assert.ok(findBullet(hf.doc(), id).text.startsWith(ackedText), "the stored text extends what the delegate saw")
})

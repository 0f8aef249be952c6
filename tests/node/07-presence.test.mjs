// Presence (DESIGN §3 "Presence ... cannot be forged"; docs/schema.md "Editing presence", "Live
// counts"): an editor's ephemeral cursor message reaches the other editors with `sender` set by the
// server to the authenticated person, whatever the client put there; a read-only peer's ephemeral
// messages are relayed to nobody; and the index document carries `presence` ephemeral messages
// whose counts follow the editors and viewers connected to group 1's document.
import { test } from "node:test"
import assert from "node:assert/strict"
import { Env, documentIdOf, recordEphemeral, waitFor } from "../lib/clients.mjs"

test("cursor presence is stamped with the real sender; read-only peers cannot broadcast", async t => {
  const env = await Env.start(t)
  const ra = await env.person("rapporteur", { group: 1, name: "Rapporteur A" })
  const rb = await env.person("rapporteur", { group: 1, name: "Rapporteur B" })
  const delegate = await env.person("delegate", { name: "Delegate D" })
  const urls = await env.urls(ra.token)

  const ca = await env.connect(ra)
  const cb = await env.connect(rb)
  const cd = await env.connect(delegate)
  const ha = await ca.find(urls.group[1])
  const hb = await cb.find(urls.group[1])
  const hd = await cd.find(urls.group[1])
  const atA = recordEphemeral(ha)
  const atB = recordEphemeral(hb)
  const atD = recordEphemeral(hd)

  ha.broadcast({ type: "cursor", bulletId: "x", sender: { person: "forged", name: "Forged", role: "co-facilitator" } })
  const got = await waitFor(() => atB.find(e => e.message?.bulletId === "x"), { what: "B to get A's cursor" })
  assert.equal(got.message.type, "cursor")
  assert.equal(got.message.sender.person, ra.id, "sender.person is A's real id")
  assert.equal(got.message.sender.name, ra.name)
  assert.equal(got.message.sender.role, "rapporteur")
  await waitFor(() => atD.find(e => e.message?.bulletId === "x"), { what: "the delegate to get A's cursor" })
  assert.equal(atD.find(e => e.message?.bulletId === "x").message.sender.person, ra.id)
  assert.ok(![...atB, ...atD].some(e => JSON.stringify(e.message).includes("forged")), "no forged value relayed")

  // The delegate broadcasts; a round trip on its connection (loading another document) makes sure
  // the server has read the broadcast before A's next cursor is sent as a barrier.
  hd.broadcast({ type: "cursor", bulletId: "from-delegate" })
  await cd.find(urls.summary)
  ha.broadcast({ type: "cursor", bulletId: "after" })
  await waitFor(() => atB.find(e => e.message?.bulletId === "after"), { what: "B to get A's later cursor" })
  await waitFor(() => atD.find(e => e.message?.bulletId === "after"), { what: "D to get A's later cursor" })
  for (const [name, got] of [["A", atA], ["B", atB]]) {
    assert.ok(!got.some(e => e.message?.bulletId === "from-delegate"), `${name} got the delegate's broadcast`)
  }
  // Clients pass ephemeral messages on to their other peers; whatever copies of A's cursors come
  // back through the server, none may carry another person as sender.
  for (const [name, got] of [["A", atA], ["B", atB], ["the delegate", atD]]) {
    for (const e of got.filter(e => e.message?.bulletId === "x" || e.message?.bulletId === "after")) {
      assert.equal(e.message.sender?.person, ra.id, `${name} got A's cursor stamped as ${JSON.stringify(e.message.sender)}`)
    }
  }
})

test("the index carries presence counts for group 1's document", async t => {
  const env = await Env.start(t)
  const watcher = await env.person("co-facilitator")
  const ra = await env.person("rapporteur", { group: 1 })
  const rb = await env.person("rapporteur", { group: 1 })
  const delegate = await env.person("delegate")
  const urls = await env.urls(watcher.token)
  const g1 = documentIdOf(urls.group[1])

  const cw = await env.connect(watcher)
  // Attach the listener before the index is ready, so that the first table is not missed.
  const progress = cw.repo.findWithProgress(urls.index)
  const presence = []
  progress.handle.on("ephemeral-message", ({ message }) => {
    if (message?.type === "presence") presence.push(message)
  })
  await cw.find(urls.index)
  const counts = () => presence.at(-1)?.docs?.[g1] ?? { editors: 0, viewers: 0 }
  const is = (editors, viewers) => () => {
    const c = counts()
    return (c.editors ?? 0) === editors && (c.viewers ?? 0) === viewers
  }

  // The server sends the table when syncing of the index starts.
  await waitFor(() => presence.length > 0, { what: "a presence message on the index" })
  assert.equal(typeof presence[0].docs, "object")

  const ca = await env.connect(ra)
  await ca.find(urls.group[1])
  await waitFor(is(1, 0), { what: "1 editor, 0 viewers" })

  const cb = await env.connect(rb)
  await cb.find(urls.group[1])
  await waitFor(is(2, 0), { what: "2 editors, 0 viewers" })

  const cd = await env.connect(delegate)
  await cd.find(urls.group[1])
  await waitFor(is(2, 1), { what: "2 editors, 1 viewer" })

  await env.disconnect(ca)
  await waitFor(is(1, 1), { what: "1 editor, 1 viewer after A left" })
  await env.disconnect(cd)
  await waitFor(is(1, 0), { what: "1 editor, 0 viewers after the delegate left" })

  // A late subscriber to the index gets the current table at once.
  const late = await env.connect(await env.person("observer"))
  const lp = late.repo.findWithProgress(urls.index)
  const latePresence = []
  lp.handle.on("ephemeral-message", ({ message }) => {
    if (message?.type === "presence") latePresence.push(message)
  })
  await late.find(urls.index)
  await waitFor(() => latePresence.length > 0, { what: "the table for a new index subscriber" })
  const c = latePresence.at(-1).docs?.[g1] ?? {}
  assert.equal(c.editors ?? 0, 1)
  // The late subscriber does not have group 1 open, so the viewer count is still 0.
  assert.equal(c.viewers ?? 0, 0)
})

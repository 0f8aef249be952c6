// Offline editing and reconnection (DESIGN §1 "a laptop that loses Wi-Fi keeps working and merges
// when it is back"): a rapporteur's connection drops; they keep editing their local copy while a
// co-rapporteur edits the same bullet; the stock client reconnects by itself with the same peer
// id, and the server merges both sides so that every copy converges and the delegate sees it all.
import { test } from "node:test"
import assert from "node:assert/strict"
import { Env, addBullet, spliceBullet, findBullet, sameDoc, waitFor } from "../lib/clients.mjs"

test("a rapporteur who drops off keeps editing and merges on reconnection", async t => {
  const env = await Env.start(t)
  const ra = await env.person("rapporteur", { group: 1 })
  const rb = await env.person("rapporteur", { group: 1 })
  const delegate = await env.person("delegate")
  const urls = await env.urls(ra.token)

  const ca = await env.connect(ra, { retryInterval: 300 })
  const cb = await env.connect(rb)
  const cd = await env.connect(delegate)
  const ha = await ca.find(urls.group[1])
  const hb = await cb.find(urls.group[1])
  const hd = await cd.find(urls.group[1])

  const shared = addBullet(ha, ra.id, "Strengthen consular protection")
  await waitFor(() => findBullet(hb.doc(), shared) && findBullet(hd.doc(), shared), {
    what: "everyone to see the shared bullet",
  })

  // A's connection drops.
  const firstSocket = ca.adapter.socket
  firstSocket.close()
  await waitFor(() => ca.repo.peers.length === 0, { what: "A's client to notice the drop" })

  // Both edit meanwhile: A offline, B online.
  const offline = addBullet(ha, ra.id, "Written while offline: expand safe migration pathways")
  spliceBullet(ha, shared, -1, 0, " for all migrants")
  spliceBullet(hb, shared, 0, 0, "Jointly ")
  const online = addBullet(hb, rb.id, "Written online meanwhile")
  await waitFor(() => findBullet(hd.doc(), online), { what: "the delegate to see B's edits" })
  assert.equal(findBullet(hd.doc(), offline), undefined, "A's offline edit has not reached anyone yet")
  assert.equal(findBullet(ha.doc(), online), undefined, "B's edit has not reached the offline A")

  // A's client reconnects on its own, with a new socket and the same peer id.
  await waitFor(() => ca.repo.peers.length > 0 && ca.adapter.socket !== firstSocket, {
    what: "A's client to reconnect",
  })
  const expected = "Jointly Strengthen consular protection for all migrants"
  const complete = doc =>
    findBullet(doc, offline) && findBullet(doc, online) && findBullet(doc, shared)?.text === expected
  await waitFor(() => complete(ha.doc()) && complete(hb.doc()) && complete(hd.doc()), {
    what: "every copy to have both sides' edits",
  })
  await waitFor(() => sameDoc(ha.doc(), hb.doc()) && sameDoc(hb.doc(), hd.doc()), { what: "convergence" })

  // And the reconnected client is live again both ways.
  const after = addBullet(hb, rb.id, "After the reconnection")
  await waitFor(() => findBullet(ha.doc(), after), { what: "A to get B's next edit live" })
  spliceBullet(ha, after, -1, 0, ", confirmed")
  await waitFor(() => findBullet(hd.doc(), after)?.text === "After the reconnection, confirmed", {
    what: "the delegate to get A's next edit live",
  })
})

// Authentication at the WebSocket upgrade and revocation (DESIGN §3, §4; docs/api.md
// "Authentication", "DELETE /api/invites/{id}"): no token, a bad token or a revoked token gets
// HTTP 401 at the upgrade; a valid one gets 101. Revoking an invite closes that person's open
// WebSockets at once, while another person's connection keeps syncing.
import { test } from "node:test"
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import {
  Env, A, api, addBullet, findBullet, documentIdOf, upgradeStatus, waitFor, DEMO_SLUG,
} from "../lib/clients.mjs"

test("the upgrade needs a valid invite token", async t => {
  const env = await Env.start(t)
  const delegate = await env.person("delegate")
  const ws = env.server.wsUrl
  const bad = randomBytes(32).toString("base64url")

  assert.equal(await upgradeStatus(ws), 401, "no token")
  assert.equal(await upgradeStatus(`${ws}?token=`), 401, "empty token")
  assert.equal(await upgradeStatus(`${ws}?token=${bad}`), 401, "unknown token")
  assert.equal(await upgradeStatus(ws, { authorization: `Bearer ${bad}` }), 401, "unknown bearer token")
  // The control: the same request with a valid token is accepted.
  assert.equal(await upgradeStatus(`${ws}?token=${delegate.token}`), 101, "valid token on the URL")
  assert.equal(await upgradeStatus(ws, { authorization: `Bearer ${delegate.token}` }), 101, "valid bearer token")
})

/** Opens a raw socket, joins, and fetches one document; resolves once the server synced it. */
async function liveRawConnection(env, token, documentId) {
  const raw = await env.rawSocket(token)
  raw.send({ type: "join", senderId: raw.senderId, peerMetadata: { isEphemeral: true }, supportedProtocolVersions: ["1"] })
  const peer = await waitFor(() => raw.received.find(m => m.type === "peer"), { what: "peer message on the raw socket" })
  const [, syncMessage] = A.generateSyncMessage(A.init(), A.initSyncState())
  raw.send({ type: "request", senderId: raw.senderId, targetId: peer.senderId, documentId, data: syncMessage })
  await waitFor(() => raw.received.find(m => m.type === "sync" && m.documentId === documentId), {
    what: "the document over the raw socket",
  })
  return raw
}

test("revoking an invite closes that person's sockets at once; others keep working", async t => {
  const env = await Env.start(t)
  const cofac = await env.person("co-facilitator")
  const rapporteur = await env.person("rapporteur", { group: 1 })
  const revokedName = `Delegate to revoke ${randomBytes(4).toString("hex")}`
  const doomed = await env.person("delegate", { name: revokedName })
  const other = await env.person("delegate")
  const urls = await env.urls(cofac.token)
  const g1 = documentIdOf(urls.group[1])

  // The person to revoke has two live connections (two tabs).
  const rawA = await liveRawConnection(env, doomed.token, g1)
  const rawB = await liveRawConnection(env, doomed.token, documentIdOf(urls.index))
  let closedA = false
  let closedB = false
  rawA.closed.then(() => (closedA = true))
  rawB.closed.then(() => (closedB = true))

  const cr = await env.connect(rapporteur)
  const co = await env.connect(other)
  const hr = await cr.find(urls.group[1])
  const ho = await co.find(urls.group[1])
  const otherSocket = co.adapter.socket
  let otherClosed = false
  otherSocket.addEventListener("close", () => (otherClosed = true))

  const list = await api(env.server, cofac.token, "GET", `/api/meetings/${DEMO_SLUG}/invites`)
  assert.equal(list.status, 200)
  const invite = list.body.find(i => i.name === revokedName)
  assert.ok(invite, `the invite is listed: ${JSON.stringify(list.body)}`)
  assert.equal(invite.revokedAt ?? null, null)
  assert.equal(closedA || closedB, false, "the sockets were open before the revocation")

  const del = await api(env.server, cofac.token, "DELETE", `/api/invites/${invite.id}`)
  assert.equal(del.status, 204)
  await waitFor(() => closedA && closedB, { timeout: 3_000, what: "the revoked person's sockets to close" })

  // The token is dead everywhere.
  assert.equal(await upgradeStatus(`${env.server.wsUrl}?token=${doomed.token}`), 401, "revoked token at the upgrade")
  assert.equal((await api(env.server, doomed.token, "GET", "/api/me")).status, 401, "revoked token on REST")
  const after = await api(env.server, cofac.token, "GET", `/api/meetings/${DEMO_SLUG}/invites`)
  assert.ok(after.body.find(i => i.id === invite.id).revokedAt, "the invite shows revokedAt")

  // The other delegate's connection is untouched and still live.
  const bullet = addBullet(hr, rapporteur.id, "Provide legal identity documents to all migrants")
  await waitFor(() => findBullet(ho.doc(), bullet), { what: "the other delegate to see a new edit" })
  assert.equal(otherClosed, false, "the other person's socket stayed open")
  assert.equal(co.adapter.socket, otherSocket, "the other person's client did not reconnect")
})

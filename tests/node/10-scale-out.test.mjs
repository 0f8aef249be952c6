// Scale-out (DESIGN §4): two server processes on one PostgreSQL database. Stock automerge-repo
// clients on each node co-edit one group document and converge; presence counts and invite
// revocation cross nodes; then one node is killed mid-edit and its clients, reconnecting through
// the load balancer, finish on the other node with nothing lost.
import { test } from "node:test"
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { startServer, inviteToken, api, waitFor, DEMO_SLUG } from "../lib/server.mjs"
import { startProxy, hostPort } from "../lib/proxy.mjs"
import { A, addBullet, spliceBullet, findBullet, allBullets, plain, sameDoc } from "../lib/clients.mjs"

const PG = process.env.DATABASE_URL_PG ?? "postgres://postgres@127.0.0.1:5432/postgres"

/** A fresh database on the test PostgreSQL server (fails, never skips, if it is not there). */
function freshDatabase() {
  const name = `rapporteur_test_${randomUUID().replace(/-/g, "")}`
  const u = new URL(PG)
  execFileSync("psql", ["-h", u.hostname, "-p", u.port || "5432", "-U", u.username || "postgres", "-d", u.pathname.slice(1) || "postgres", "-c", `CREATE DATABASE ${name}`], { stdio: "pipe" })
  u.pathname = `/${name}`
  return u.toString()
}

const clients = []

function client(wsUrl, token, retryInterval = 300) {
  // A short retry interval so that the reconnect after a node dies is quick.
  const adapter = new WebSocketClientAdapter(`${wsUrl}?token=${token}`, retryInterval)
  const repo = new Repo({ network: [adapter] })
  clients.push({ repo, adapter })
  return repo
}

/** Stops every client for good: the stock adapter would otherwise keep reconnecting. */
async function closeClients() {
  for (const { repo, adapter } of clients.splice(0)) {
    adapter.connect = () => {}
    await Promise.race([repo.shutdown(), new Promise(resolve => setTimeout(resolve, 2000))])
  }
}

test("two nodes on one PostgreSQL database: co-editing, presence, revocation and a node failure", async t => {
  const databaseUrl = freshDatabase()
  // Both nodes start at once: the demo meeting must still be created exactly once.
  const [a, b] = await Promise.all([startServer({ databaseUrl }), startServer({ databaseUrl })])
  const lb = await startProxy(hostPort(a.url))
  // Clients first, so that none of them is left reconnecting to a stopped node.
  t.after(async () => {
    await closeClients()
    await lb.close()
    await a.stop()
    await b.stop()
  })

  const mint = (role, opts = {}) => inviteToken(databaseUrl, { role, ...opts })
  const cofac = mint("co-facilitator")
  const r1 = mint("rapporteur", { group: 1, name: "Rapporteur on node A" })
  const r2 = mint("rapporteur", { group: 1, name: "Rapporteur on node B" })
  const viewer = mint("delegate", { name: "Delegate on node B" })
  const meetings = await api(b, cofac, "GET", "/api/meetings")
  assert.equal(meetings.body.length, 1, "one demo meeting, whichever node created it")
  const meeting = (await api(a, cofac, "GET", `/api/meetings/${DEMO_SLUG}`)).body
  const groupUrl = meeting.groups[0].outcomeDocUrl
  const id1 = (await api(a, r1, "GET", "/api/me")).body.person.id
  const id2 = (await api(b, r2, "GET", "/api/me")).body.person.id

  const c1 = client(lb.wsUrl, r1) // through the load balancer, to node A
  const c2 = client(b.wsUrl, r2) // node B
  const cv = client(b.wsUrl, viewer) // node B
  const [h1, h2, hv] = await Promise.all([c1.find(groupUrl), c2.find(groupUrl), cv.find(groupUrl)])

  // Co-editing across nodes.
  const shared = addBullet(h1, id1, "Strengthen regular pathways for labour migration")
  await waitFor(() => findBullet(h2.doc(), shared), { what: "node B to get node A's bullet" })
  const x = addBullet(h2, id2, "Improve data on remittance costs")
  spliceBullet(h1, shared, 0, 0, "Jointly ")
  spliceBullet(h2, shared, -1, 0, " and skills partnerships")
  const expected = "Jointly Strengthen regular pathways for labour migration and skills partnerships"
  await waitFor(
    () => [h1, h2, hv].every(h => findBullet(h.doc(), shared)?.text === expected && findBullet(h.doc(), x)),
    { what: "all three copies to have both nodes' edits" },
  )
  await waitFor(() => sameDoc(h1.doc(), h2.doc()) && sameDoc(h2.doc(), hv.doc()), { what: "convergence" })
  // Each node names the person behind every change, those accepted by the other node included
  // (docs/protocol.md, "Authorship").
  for (const node of [a, b]) {
    const log = await waitFor(async () => {
      const r = await api(node, viewer, "GET", `/api/meetings/${DEMO_SLUG}/groups/1/history`)
      return r.body.changes.length === A.getAllChanges(h1.doc()).length ? r : null
    }, { what: `node ${node.url} to hold every change` })
    const authors = new Set(log.body.changes.slice(1).map(c => c.by))
    assert.deepEqual([...authors].sort(), [id1, id2].sort(), `authors on ${node.url}`)
  }

  // Presence: node B's index counts the people on node A as well. A viewer joins on node A
  // after node B's index client listens, so that a fresh table must come out of node B.
  const index = await cv.find(meeting.indexDocUrl)
  let latest = null
  index.on("ephemeral-message", e => {
    if (e.message?.type === "presence") latest = e.message
  })
  const viewerOnA = client(a.wsUrl, mint("delegate", { name: "Delegate on node A" }))
  await viewerOnA.find(groupUrl)
  const groupDoc = groupUrl.replace(/^automerge:/, "")
  // Editors: one on each node; viewers: one on each node.
  await waitFor(() => latest?.docs?.[groupDoc]?.editors === 2 && latest.docs[groupDoc].viewers === 2, {
    what: "presence on node B to count the editors and viewers of both nodes",
    timeout: 15_000,
  }).catch(e => {
    throw new Error(`${e.message}; last presence seen: ${JSON.stringify(latest)}`)
  })

  // Revocation on node A ends a connection on node B.
  const victim = mint("delegate", { name: "Revoked on node B" })
  // No retry: a revoked invite's reconnect is refused (401), which is not what this checks.
  const cr = client(b.wsUrl, victim, 0)
  await cr.find(groupUrl)
  const invites = (await api(a, cofac, "GET", `/api/meetings/${DEMO_SLUG}/invites`)).body
  const victimInvite = invites.find(i => i.name === "Revoked on node B")
  const closed = new Promise(resolve => cr.networkSubsystem.adapters[0].socket.addEventListener("close", resolve))
  assert.equal((await api(a, cofac, "DELETE", `/api/invites/${victimInvite.id}`)).status, 204)
  await Promise.race([
    closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error("node B kept the revoked connection")), 10_000)),
  ])

  // A node fails mid-edit: node A is killed while its client keeps typing; the load balancer
  // sends the reconnect to node B; every edit of the client ends up everywhere.
  const written = []
  for (let i = 0; i < 20; i++) {
    written.push(addBullet(h1, id1, `Commitment ${i} written during the failover`, { sectionIndex: 1 }))
    if (i === 8) {
      lb.retarget(hostPort(b.url))
      await a.kill()
    }
    await new Promise(resolve => setImmediate(resolve))
  }
  const hasAll = h => written.every(id => findBullet(h.doc(), id))
  await waitFor(() => hasAll(h2) && hasAll(hv), { what: "node B's clients to get every edit", timeout: 30_000 })
  await waitFor(() => sameDoc(h1.doc(), h2.doc()), { what: "the failed-over client to converge", timeout: 30_000 })
  assert.equal(allBullets(h2.doc()).filter(b => b.sectionIndex === 1).length, 20)
  assert.deepEqual(plain(h2.doc()), plain(hv.doc()))
})

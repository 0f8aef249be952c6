// A node that loses its PostgreSQL database (DESIGN §4, docs/deployment.md): while the database
// refuses connections the node reports not ready and refuses edits with an error, acknowledging
// nothing it did not store; when the database is back it recovers by itself, and the edit made
// during the outage arrives with the next one: nothing is lost.
import { test } from "node:test"
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { Env, addBullet, findBullet, errorsIn, waitFor } from "../lib/clients.mjs"

const PG = new URL(process.env.DATABASE_URL_PG ?? "postgres://postgres@127.0.0.1:5432/postgres")

function psql(sql) {
  execFileSync("psql", ["-h", PG.hostname, "-p", PG.port || "5432", "-U", PG.username || "postgres", "-d", "postgres", "-qc", sql], { stdio: "pipe" })
}

async function status(url, path) {
  try {
    return (await fetch(url + path)).status
  } catch {
    return 0
  }
}

test("a node whose database goes away refuses edits, reports not ready, and recovers", async t => {
  const name = `rapporteur_test_${randomUUID().replace(/-/g, "")}`
  psql(`CREATE DATABASE ${name}`)
  const databaseUrl = new URL(PG)
  databaseUrl.pathname = `/${name}`
  // However the test ends, the database takes connections again.
  t.after(() => psql(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`))
  const env = await Env.start(t, { databaseUrl: databaseUrl.toString() })

  const r = await env.person("rapporteur", { group: 1, name: "Rapporteur" })
  const d = await env.person("delegate", { name: "Delegate" })
  const urls = await env.urls(r.token)
  const cr = await env.connect(r)
  const cd = await env.connect(d)
  const hr = await cr.find(urls.group[1])
  const hd = await cd.find(urls.group[1])
  const before = addBullet(hr, r.id, "Written before the outage")
  await waitFor(() => findBullet(hd.doc(), before), { what: "the first edit to reach the delegate" })
  assert.equal(await status(env.server.url, "/readyz"), 200)

  // The database goes away: no new connections, and the node's are cut.
  psql(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)
  psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`)
  await waitFor(async () => (await status(env.server.url, "/readyz")) === 503, {
    what: "the node to report not ready",
    timeout: 20_000,
  })
  const during = addBullet(hr, r.id, "Written during the outage")
  await waitFor(() => errorsIn(cr).some(e => /could not store/.test(e.message)), {
    what: "the edit to be refused with an error",
    timeout: 20_000,
  })
  assert.equal(findBullet(hd.doc(), during), undefined, "a refused edit reached another client")
  assert.equal(await status(env.server.url, "/healthz"), 200, "the process is alive")

  // The database is back: the node recovers by itself, and the next edit brings the refused
  // one along (the server asks for the change it is missing).
  psql(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`)
  await waitFor(async () => (await status(env.server.url, "/readyz")) === 200, {
    what: "the node to report ready again",
    timeout: 20_000,
  })
  const after = addBullet(hr, r.id, "Written after the outage")
  await waitFor(() => findBullet(hd.doc(), during) && findBullet(hd.doc(), after), {
    what: "both edits to reach the delegate",
    timeout: 20_000,
  })
})

// Who wrote what, through the stock automerge-repo client (docs/protocol.md "Authorship",
// docs/api.md "Group versions"): a rapporteur drafts and types through automerge-repo, the group
// reports back (v1), the rapporteur keeps typing and a co-facilitator edits another bullet; the
// diff since the report-back and the change log name each of them with their role, never an
// Automerge actor id. The moderator's client writing with the rapporteur's actor id is refused,
// and the rapporteur goes on typing as before.
import { test } from "node:test"
import assert from "node:assert/strict"
import {
  Env, A, api, addBullet, findBullet, spliceBullet, rawPeer, documentIdOf, waitFor, DEMO_SLUG,
} from "../lib/clients.mjs"

const groupPath = n => `/api/meetings/${DEMO_SLUG}/groups/${n}`

test("a diff names the rapporteur who typed and the co-facilitator who edited", async t => {
  const env = await Env.start(t)
  const rapporteur = await env.person("rapporteur", { group: 1, name: "Ana Ruiz" })
  const moderator = await env.person("moderator", { group: 1, name: "Bruno Silva" })
  const cofac = await env.person("co-facilitator", { name: "Co-facilitator Mexico" })
  const delegate = await env.person("delegate")
  const urls = await env.urls(rapporteur.token)

  const cr = await env.connect(rapporteur)
  const cc = await env.connect(cofac)
  const hr = await cr.find(urls.group[1])
  const hc = await cc.find(urls.group[1])
  const first = addBullet(hr, rapporteur.id, "Establish a regional mechanism")
  const second = addBullet(hr, rapporteur.id, "Ensure consular assistance")
  await waitFor(() => findBullet(hc.doc(), second), { what: "the co-facilitator to see both bullets" })
  const v1 = await api(env.server, rapporteur.token, "POST", `${groupPath(1)}/submit`, { override: false })
  assert.equal(v1.status, 200, JSON.stringify(v1.body))

  // After the report-back: the rapporteur types one character at a time, as in the web app, and
  // the co-facilitator edits the other bullet.
  for (const ch of " on missing migrants") spliceBullet(hr, first, -1, 0, ch)
  spliceBullet(hc, second, -1, 0, " to all migrants")
  const want = {
    [first]: "Establish a regional mechanism on missing migrants",
    [second]: "Ensure consular assistance to all migrants",
  }
  const diff = await waitFor(async () => {
    const r = await api(env.server, delegate.token, "GET", `${groupPath(1)}/diff?from=v1`)
    const changed = r.body?.diff?.changed ?? []
    return changed.length === 2 && changed.every(c => c.newText === want[c.id]) ? r.body : null
  }, { timeout: 15_000, what: "both edits in the diff since v1" })
  const by = id => diff.diff.changed.find(c => c.id === id).by
  assert.deepEqual(by(first), [rapporteur.id])
  assert.deepEqual(by(second), [cofac.id])
  assert.deepEqual(diff.people[rapporteur.id], { name: "Ana Ruiz", role: "rapporteur", group: 1 })
  assert.deepEqual(diff.people[cofac.id], { name: "Co-facilitator Mexico", role: "co-facilitator", group: null })
  assert.deepEqual([...diff.diff.authors].sort(), [rapporteur.id, cofac.id].sort())

  // The change log too: every change since the document was made has a person.
  const log = await api(env.server, delegate.token, "GET", `${groupPath(1)}/history`)
  assert.equal(log.status, 200)
  const since = log.body.changes.slice(1)
  assert.ok(since.length > 20, "one change per keystroke")
  for (const c of since) assert.ok(log.body.people[c.by], `change ${c.hash} by ${c.by}`)

  // The moderator's client writes with the rapporteur's actor id: refused, not stored.
  const forger = await rawPeer(env, moderator.token)
  const docId = documentIdOf(urls.group[1])
  await forger.load(docId, doc => findBullet(doc, first)?.text === want[first])
  forger.push(docId, d => {
    d.sections[0].bullets[0].status = new A.ImmutableString("agreed")
  }, { actor: A.getActorId(hr.doc()) })
  const refusal = await waitFor(() => forger.errors()[0], { what: "the refusal" })
  assert.match(refusal.message, /another person's Automerge actor/)

  // The rapporteur's next keystrokes still go through (their sequence numbers are theirs).
  spliceBullet(hr, first, -1, 0, "!")
  await waitFor(() => findBullet(hc.doc(), first)?.text === `${want[first]}!`, { what: "the rapporteur's next edit" })
  const status = await api(env.server, delegate.token, "GET", `${groupPath(1)}/versions/1`)
  assert.equal(status.status, 200)
  const after = await api(env.server, delegate.token, "GET", `${groupPath(1)}/diff?from=v1`)
  assert.equal(after.body.diff.changed.find(c => c.id === first).newText, `${want[first]}!`)
  assert.equal(
    after.body.diff.changed.find(c => c.id === first).oldText,
    "Establish a regional mechanism",
  )
  assert.ok(!JSON.stringify(after.body.diff).includes("actor:"), "no actor ids")
})

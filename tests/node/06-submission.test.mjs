// The group workflow over REST, observed live through the meeting index (DESIGN §2 "Workflow",
// "The pre-established format"; docs/api.md submit/lock; docs/schema.md "Meeting index"):
// a rapporteur submits a valid outcome (version 1 with the document's heads and a content hash) and
// a delegate following the index over sync sees the group become "submitted" with that submission;
// a bullet over the word limit makes submission fail with 422 and its violations, which a
// co-facilitator may override; once a co-facilitator locks the group the index says "locked",
// rapporteur changes over sync are refused and submission answers 409.
import { test } from "node:test"
import assert from "node:assert/strict"
import {
  Env, A, api, addBullet, findBullet, indexGroup, documentIdOf, sentSyncMessages, roundTrip, words, waitFor, DEMO_SLUG,
} from "../lib/clients.mjs"

const submitPath = n => `/api/meetings/${DEMO_SLUG}/groups/${n}/submit`

test("submit, format violations and override, lock", async t => {
  const env = await Env.start(t)
  const rapporteur = await env.person("rapporteur", { group: 1, name: "Rapporteur of Group One" })
  const cofac = await env.person("co-facilitator", { name: "Co-facilitator Mexico" })
  const delegate = await env.person("delegate")
  const urls = await env.urls(rapporteur.token)
  const maxWords = urls.meeting.formatRules.maxWordsPerBullet
  assert.equal(typeof maxWords, "number")

  const cr = await env.connect(rapporteur)
  const cd = await env.connect(delegate)
  const hr = await cr.find(urls.group[1])
  const hd = await cd.find(urls.group[1])
  const index = await cd.find(urls.index)
  assert.equal(String(index.doc().schema), "rapporteur.meeting-index")
  assert.equal(indexGroup(index.doc(), 1).state, "drafting")
  assert.deepEqual(indexGroup(index.doc(), 1).submissions, [])

  // A valid bullet, acknowledged (the delegate has it) before submitting.
  const valid = addBullet(hr, rapporteur.id, "Establish a regional mechanism to share information on missing migrants")
  await waitFor(() => findBullet(hd.doc(), valid), { what: "the delegate to see the valid bullet" })
  const headsAtSubmit = [...A.getHeads(hr.doc())].sort()

  const s1 = await api(env.server, rapporteur.token, "POST", submitPath(1), { override: false })
  assert.equal(s1.status, 200, JSON.stringify(s1.body))
  const sub1 = s1.body.submission
  assert.equal(sub1.version, 1)
  assert.deepEqual([...sub1.heads].sort(), headsAtSubmit, "the submission freezes the current heads")
  assert.match(sub1.contentHash, /^[0-9a-f]{64}$/)
  assert.equal(sub1.byPerson, rapporteur.id)
  assert.equal(sub1.by, rapporteur.name)
  assert.equal(sub1.override, false)
  assert.equal(typeof sub1.at, "number")

  // Live in the index at the delegate.
  await waitFor(() => indexGroup(index.doc(), 1)?.state === "submitted", { what: "index: group 1 submitted" })
  await waitFor(() => indexGroup(index.doc(), 1).submissions.length === 1, { what: "index: one submission" })
  const inIndex = indexGroup(index.doc(), 1).submissions[0]
  assert.equal(inIndex.version, 1)
  assert.deepEqual([...inIndex.heads].sort(), headsAtSubmit)
  assert.equal(inIndex.contentHash, sub1.contentHash)
  assert.equal(inIndex.byPerson, rapporteur.id)
  assert.equal(inIndex.override, false)
  assert.equal(indexGroup(index.doc(), 2).state, "drafting", "other groups unchanged")

  // A bullet one word over the limit: submission refused with the violation.
  const long = addBullet(hr, rapporteur.id, words(maxWords + 1, "commitment"))
  await waitFor(() => findBullet(hd.doc(), long), { what: "the delegate to see the long bullet" })
  const s2 = await api(env.server, rapporteur.token, "POST", submitPath(1), { override: false })
  assert.equal(s2.status, 422, JSON.stringify(s2.body))
  assert.ok(Array.isArray(s2.body.violations) && s2.body.violations.length > 0)
  const v = s2.body.violations.find(x => x.bulletId === long)
  assert.ok(v, `a violation names the long bullet: ${JSON.stringify(s2.body.violations)}`)
  assert.equal(typeof v.rule, "string")
  assert.equal(typeof v.message, "string")
  assert.ok(!s2.body.violations.some(x => x.bulletId === valid), "the valid bullet is not flagged")

  // A rapporteur may not override.
  const s3 = await api(env.server, rapporteur.token, "POST", submitPath(1), { override: true })
  assert.notEqual(s3.status, 200, "a rapporteur's override is refused")
  assert.ok(s3.status === 403 || s3.status === 422, `status ${s3.status}`)

  // A co-facilitator may.
  const s4 = await api(env.server, cofac.token, "POST", submitPath(1), { override: true })
  assert.equal(s4.status, 200, JSON.stringify(s4.body))
  assert.equal(s4.body.submission.version, 2)
  assert.equal(s4.body.submission.override, true)
  assert.equal(s4.body.submission.byPerson, cofac.id)
  assert.notEqual(s4.body.submission.contentHash, sub1.contentHash)
  await waitFor(() => indexGroup(index.doc(), 1).submissions.length === 2, { what: "index: two submissions" })
  assert.equal(indexGroup(index.doc(), 1).submissions[1].override, true)
  assert.deepEqual(indexGroup(index.doc(), 1).submissions[0], inIndex, "the first submission is frozen")

  // Lock.
  const lock = await api(env.server, cofac.token, "POST", `/api/meetings/${DEMO_SLUG}/groups/1/lock`)
  assert.equal(lock.status, 200, JSON.stringify(lock.body))
  assert.equal(lock.body.state, "locked")
  await waitFor(() => indexGroup(index.doc(), 1).state === "locked", { what: "index: group 1 locked" })

  // The rapporteur's change after the lock is refused.
  const mark = cr.log.length
  const late = addBullet(hr, rapporteur.id, "LATE bullet after the lock")
  const lateHeads = A.getHeads(hr.doc())
  // Barrier: the client sent its sync message, then a round trip on the same connection.
  await waitFor(() => sentSyncMessages(cr, documentIdOf(urls.group[1]), mark).length > 0, { what: "the client to send its change" })
  await roundTrip(cr, urls.summary)
  const fresh = await env.connect(await env.person("observer"))
  const hf = await fresh.find(urls.group[1])
  assert.ok(findBullet(hf.doc(), long), "the fresh client has the document as of the lock")
  assert.equal(findBullet(hf.doc(), late), undefined, "the change after the lock was not applied")
  assert.equal(A.hasHeads(hf.doc(), lateHeads), false)
  assert.equal(findBullet(hd.doc(), late), undefined, "nor relayed to the delegate")

  const s5 = await api(env.server, rapporteur.token, "POST", submitPath(1), { override: false })
  assert.equal(s5.status, 409, `submit while locked: ${JSON.stringify(s5.body)}`)
  const s6 = await api(env.server, cofac.token, "POST", submitPath(1), { override: true })
  assert.equal(s6.status, 409, `co-facilitator submit while locked: ${JSON.stringify(s6.body)}`)
})

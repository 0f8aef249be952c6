#!/usr/bin/env node
// Development stand-in for the `rapporteur` binary, for working on the web app before the real
// server runs. Same command line as the contract (docs/api.md "CLI": `serve` and `invite` with
// --database-url), so tests/lib/server.mjs can drive it with RAPPORTEUR_BIN=web/dev/mock-server.mjs.
// It follows docs/api.md and docs/schema.md closely enough for the UI: invites and sessions, the
// REST endpoints the app uses, the stock automerge-repo sync server with read-only peers refused, the
// `presence` table on the index document and `sender`-stamped cursor messages. Documents live in
// memory only; invites live in a JSON file next to the --database-url path.
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { existsSync, readFileSync, writeFileSync, statSync } from "node:fs"
import http from "node:http"
import path from "node:path"
import { fileURLToPath } from "node:url"
import * as A from "@automerge/automerge"
import { ImmutableString, Repo, cbor } from "@automerge/automerge-repo"
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { WebSocketServer } from "ws"

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, "..", "..")

function arg(argv, name, fallback) {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : fallback
}

const storeFile = url => url.replace(/^sqlite:\/\//, "").replace(/\?.*$/, "") + ".mock.json"
const hash = token => createHash("sha256").update(token).digest("hex")

function loadStore(file) {
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { invites: [] }
}
function saveStore(file, store) {
  writeFileSync(file, JSON.stringify(store, null, 1))
}

function mintInvite(file, { meeting, role, group, name }, base) {
  const store = loadStore(file)
  const token = randomBytes(24).toString("base64url")
  const invite = {
    id: randomUUID(),
    tokenHash: hash(token),
    meeting,
    role,
    group: group === undefined || group === null ? null : Number(group),
    name: name ?? null,
    createdAt: Date.now(),
    expiresAt: null,
    revokedAt: null,
  }
  store.invites.push(invite)
  saveStore(file, store)
  return { invite, token, url: `${base}/join/${token}` }
}

const argv = process.argv.slice(2)
const command = argv[0]
const databaseUrl = arg(argv, "--database-url", process.env.DATABASE_URL ?? "sqlite:///tmp/rapporteur-mock.db")
const file = storeFile(databaseUrl)

if (command === "invite") {
  const { url } = mintInvite(
    file,
    {
      meeting: arg(argv, "--meeting"),
      role: arg(argv, "--role"),
      group: arg(argv, "--group"),
      name: arg(argv, "--name"),
    },
    arg(argv, "--public-url", "http://localhost"),
  )
  console.log(url)
  process.exit(0)
}
if (command !== "serve") {
  console.error("usage: mock-server.mjs serve|invite ...")
  process.exit(2)
}

// ---- the meeting and its documents ----------------------------------------------------------

const meetingFile = JSON.parse(readFileSync(path.join(repoRoot, "meetings", "gcm-stocktaking-2017.json"), "utf8"))
const slug = meetingFile.slug
const webDir = arg(argv, "--web-dir", path.join(repoRoot, "web", "dist"))

class GuardedAdapter extends WebSocketServerAdapter {
  receiveMessage(bytes, socket) {
    let msg
    try {
      msg = cbor.decode(new Uint8Array(bytes))
    } catch {
      return super.receiveMessage(bytes, socket)
    }
    const person = socket.person
    if (msg.type === "join") {
      peers.set(msg.senderId, { person, socket, docs: new Set() })
      socket.peerIds = (socket.peerIds ?? new Set()).add(msg.senderId)
    }
    const docId = msg.documentId
    const peer = peers.get(msg.senderId)
    if (docId && peer && !peer.docs.has(docId)) {
      peer.docs.add(docId)
      presenceChanged()
    }
    if (docId && msg.type === "sync") {
      const decoded = A.decodeSyncMessage(new Uint8Array(msg.data))
      if (decoded.changes.length > 0 && !mayWrite(person, docId)) {
        this.send({
          type: "error",
          senderId: this.peerId,
          targetId: msg.senderId,
          documentId: docId,
          message: `change to document ${docId} refused: ${lockedDoc(docId) ? "the group is locked" : "this role may not write it"}`,
        })
        return
      }
    }
    if (docId && msg.type === "ephemeral") {
      if (!mayWrite(person, docId)) return
      const data = cbor.decode(new Uint8Array(msg.data))
      data.sender = { person: person.id, name: person.name, role: person.role }
      msg.data = cbor.encode(data)
      return super.receiveMessage(cbor.encode(msg), socket)
    }
    super.receiveMessage(bytes, socket)
  }
}

const wss = new WebSocketServer({ noServer: true })
const adapter = new GuardedAdapter(wss)
const repo = new Repo({ network: [adapter], peerId: `mock-server-${randomUUID()}`, sharePolicy: async () => false })
const peers = new Map() // peerId -> { person, socket, docs }

/** Server-written strings are scalar strings (schema.md `string`), not Text. */
function scalars(value) {
  if (typeof value === "string") return new ImmutableString(value)
  if (Array.isArray(value)) return value.map(scalars)
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scalars(v)]))
  return value
}

const groupHandles = new Map()
for (const g of meetingFile.groups) {
  const handle = repo.create(scalars({
    schema: "rapporteur.group-outcome",
    schemaVersion: 1,
    meeting: slug,
    group: { number: g.number, dimension: g.dimension, moderator: "", rapporteur: "", questions: g.questions },
    sections: meetingFile.sections.map(s => ({ id: s.id, title: s.title, bullets: [] })),
  }))
  groupHandles.set(g.number, handle)
}
const summary = repo.create(scalars({
  schema: "rapporteur.chair-summary",
  schemaVersion: 1,
  meeting: slug,
  title: "Chair's summary",
  preamble: "",
  state: "drafting",
  sections: meetingFile.sections.map(s => ({ id: s.id, title: s.title, items: [] })),
}))
summary.change(d => {
  d.preamble = ""
})
const index = repo.create(scalars({
  schema: "rapporteur.meeting-index",
  schemaVersion: 1,
  meeting: {
    slug,
    title: meetingFile.title,
    venue: meetingFile.venue,
    startDate: meetingFile.startDate,
    endDate: meetingFile.endDate,
    timezone: meetingFile.timezone,
  },
  agenda: meetingFile.agenda,
  formatRules: meetingFile.formatRules,
  sections: meetingFile.sections,
  groups: meetingFile.groups.map(g => ({
    number: g.number,
    dimension: g.dimension,
    docUrl: groupHandles.get(g.number).url,
    slot: g.slot,
    state: "drafting",
    submissions: [],
  })),
  summary: { docUrl: summary.url, state: "drafting" },
}))

const groupOfDoc = docId => [...groupHandles].find(([, h]) => h.documentId === docId)?.[0]
const plain = value => JSON.parse(JSON.stringify(value))
const lockedDoc = docId => {
  const n = groupOfDoc(docId)
  return n !== undefined && String(index.doc().groups.find(g => g.number === n)?.state) === "locked"
}
function mayEditGroup(person, n) {
  return person.role === "co-facilitator" || ((person.role === "rapporteur" || person.role === "moderator") && person.group === n)
}
function mayWrite(person, docId) {
  const n = groupOfDoc(docId)
  if (n !== undefined) return mayEditGroup(person, n) && !lockedDoc(docId)
  if (docId === summary.documentId) return person.role === "co-facilitator"
  return false
}

let presenceTimer = null
function presenceChanged() {
  if (presenceTimer) return
  presenceTimer = setTimeout(() => {
    presenceTimer = null
    const docs = {}
    for (const h of [...groupHandles.values(), summary, index]) docs[h.documentId] = { editors: 0, viewers: 0 }
    for (const p of peers.values()) {
      for (const d of p.docs) {
        if (!docs[d]) continue
        docs[d][mayWrite(p.person, d) ? "editors" : "viewers"]++
      }
    }
    index.broadcast({ type: "presence", docs })
  }, 250)
}

// ---- HTTP -----------------------------------------------------------------------------------

function personFrom(req) {
  const url = new URL(req.url, "http://x")
  const cookie = /(?:^|;\s*)rapporteur_session=([^;]+)/.exec(req.headers.cookie ?? "")?.[1]
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1]
  const token = cookie ?? bearer ?? url.searchParams.get("token")
  if (!token) return null
  const inv = loadStore(file).invites.find(i => i.tokenHash === hash(token))
  if (!inv || inv.revokedAt) return null
  return { id: inv.id, name: inv.name ?? inv.role, role: inv.role, group: inv.group, meeting: inv.meeting }
}

function send(res, status, body, headers = {}) {
  if (body === undefined) {
    res.writeHead(status, headers)
    return res.end()
  }
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

async function readJson(req) {
  let raw = ""
  for await (const chunk of req) raw += chunk
  return raw ? JSON.parse(raw) : {}
}

function checkRules(doc, rules) {
  const out = []
  const seen = new Set()
  const key = t => t.toLocaleLowerCase().replace(/\s+/gu, " ").replace(/^[\s\p{P}]+|[\s\p{P}]+$/gu, "")
  for (const s of doc.sections) {
    if (s.bullets.length > rules.maxBulletsPerSection) out.push({ rule: "maxBulletsPerSection", sectionId: s.id, bulletId: null, message: `${s.bullets.length} bullets (limit ${rules.maxBulletsPerSection})` })
    for (const b of s.bullets) {
      const text = String(b.text)
      const v = (rule, message) => out.push({ rule, sectionId: s.id, bulletId: b.id, message })
      if (rules.forbidEmpty && !text.trim()) v("forbidEmpty", "Empty bullet")
      const words = text.trim() ? text.trim().split(/\s+/u).length : 0
      if (words > rules.maxWordsPerBullet) v("maxWordsPerBullet", `${words} words (limit ${rules.maxWordsPerBullet})`)
      if (rules.singleParagraph && /[\r\n\u2028\u2029]/u.test(text)) v("singleParagraph", "Line break")
      if (rules.forbidDuplicates && text.trim()) {
        if (seen.has(key(text))) v("forbidDuplicates", "Duplicate")
        seen.add(key(text))
      }
    }
  }
  return out
}

function landing(person) {
  if ((person.role === "rapporteur" || person.role === "moderator") && person.group) return `/m/${person.meeting}/groups/${person.group}`
  if (person.role === "co-facilitator" || person.role === "secretariat") return `/m/${person.meeting}/dashboard`
  return `/m/${person.meeting}`
}

function meetingDetails() {
  const ix = plain(index.doc())
  return {
    ...ix.meeting,
    agenda: ix.agenda,
    formatRules: ix.formatRules,
    sections: ix.sections,
    indexDocUrl: index.url,
    summaryDocUrl: summary.url,
    summaryState: ix.summary.state,
    groups: ix.groups.map(g => ({
      number: g.number,
      dimension: g.dimension,
      slot: g.slot,
      questions: plain(groupHandles.get(g.number).doc()).group.questions,
      moderator: "",
      rapporteur: "",
      outcomeDocUrl: g.docUrl,
      state: g.state,
      submissions: g.submissions,
    })),
  }
}

const MIME = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".svg": "image/svg+xml", ".map": "application/json" }

async function handle(req, res) {
  const url = new URL(req.url, "http://x")
  const p = url.pathname
  const m = (method, re) => req.method === method && re.exec(p)
  let match
  if (p === "/healthz" || p === "/readyz") return res.end("ok")
  if ((match = m("GET", /^\/join\/([A-Za-z0-9_-]+)$/))) {
    const inv = loadStore(file).invites.find(i => i.tokenHash === hash(match[1]))
    if (!inv || inv.revokedAt) return send(res, 401, undefined, { "content-type": "text/html" })
    const person = { role: inv.role, group: inv.group, meeting: inv.meeting }
    return send(res, 303, undefined, {
      location: landing(person),
      "set-cookie": `rapporteur_session=${match[1]}; HttpOnly; SameSite=Lax; Path=/`,
    })
  }
  if (p.startsWith("/api/")) {
    const person = personFrom(req)
    if (!person) return send(res, 401, { error: "no session" })
    if (m("GET", /^\/api\/me$/)) return send(res, 200, { person })
    if (m("POST", /^\/api\/logout$/)) return send(res, 204, undefined, { "set-cookie": "rapporteur_session=; Max-Age=0; Path=/" })
    if (m("GET", /^\/api\/meetings$/)) return send(res, 200, [{ slug, title: meetingFile.title }])
    if ((match = m("GET", /^\/api\/meetings\/([^/]+)$/))) {
      if (match[1] !== slug) return send(res, 404, { error: "unknown meeting" })
      return send(res, 200, meetingDetails())
    }
    if ((match = m("POST", /^\/api\/meetings\/([^/]+)\/groups\/(\d+)\/(submit|lock|reopen)$/))) {
      const n = Number(match[2])
      const action = match[3]
      const gh = groupHandles.get(n)
      if (!gh) return send(res, 404, { error: "unknown group" })
      const body = await readJson(req)
      if (action === "submit") {
        if (!mayEditGroup(person, n)) return send(res, 403, { error: "not an editor of this group" })
        const entry = plain(index.doc()).groups.find(g => g.number === n)
        if (entry.state === "locked") return send(res, 409, { error: "the group is locked" })
        const override = body.override === true
        if (override && person.role !== "co-facilitator") return send(res, 403, { error: "only co-facilitators may override" })
        const violations = checkRules(plain(gh.doc()), plain(index.doc()).formatRules)
        if (violations.length && !override) return send(res, 422, { error: "format rules fail", violations })
        const submission = {
          version: entry.submissions.length + 1,
          at: Date.now(),
          by: person.name,
          byPerson: person.id,
          heads: A.getHeads(gh.doc()),
          contentHash: createHash("sha256").update(JSON.stringify(gh.doc())).digest("hex"),
          override,
        }
        index.change(d => {
          const g = d.groups.find(g => g.number === n)
          g.submissions.push(scalars(submission))
          g.state = new ImmutableString("submitted")
        })
        return send(res, 200, { submission })
      }
      if (person.role !== "co-facilitator") return send(res, 403, { error: "co-facilitators only" })
      index.change(d => {
        const g = d.groups.find(g => g.number === n)
        g.state = new ImmutableString(action === "lock" ? "locked" : g.submissions.length ? "submitted" : "drafting")
      })
      return send(res, 200, { state: String(index.doc().groups.find(g => g.number === n).state) })
    }
    if ((match = m("GET", /^\/api\/meetings\/([^/]+)\/invites$/))) {
      if (person.role !== "co-facilitator" && person.role !== "secretariat") return send(res, 403, { error: "forbidden" })
      return send(res, 200, loadStore(file).invites.map(({ tokenHash: _, meeting: __, ...i }) => i))
    }
    if ((match = m("POST", /^\/api\/meetings\/([^/]+)\/invites$/))) {
      if (person.role !== "co-facilitator" && person.role !== "secretariat") return send(res, 403, { error: "forbidden" })
      const body = await readJson(req)
      const base = `http://${req.headers.host}`
      const { invite, token, url: inviteUrl } = mintInvite(file, { meeting: slug, role: body.role, group: body.group, name: body.name }, base)
      const { tokenHash: _, meeting: __, ...rest } = invite
      return send(res, 201, { ...rest, url: inviteUrl, token })
    }
    if ((match = m("DELETE", /^\/api\/invites\/([^/]+)$/))) {
      const store = loadStore(file)
      const inv = store.invites.find(i => i.id === match[1])
      if (!inv) return send(res, 404, { error: "unknown invite" })
      inv.revokedAt = Date.now()
      saveStore(file, store)
      for (const peer of peers.values()) if (peer.person.id === inv.id) peer.socket.close()
      return send(res, 204)
    }
    return send(res, 404, { error: "not found" })
  }
  // static files with SPA fallback
  let filePath = path.join(webDir, path.normalize(p).replace(/^(\.\.[/\\])+/, ""))
  if (!existsSync(filePath) || statSync(filePath).isDirectory()) filePath = path.join(webDir, "index.html")
  res.writeHead(200, { "content-type": MIME[path.extname(filePath)] ?? "application/octet-stream" })
  res.end(readFileSync(filePath))
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(err => {
    console.error(err)
    send(res, 500, { error: "internal error" })
  })
})
server.on("upgrade", (req, socket, head) => {
  const person = personFrom(req)
  if (new URL(req.url, "http://x").pathname !== "/sync" || !person) {
    socket.write("HTTP/1.1 401 Unauthorized\r\n\r\n")
    return socket.destroy()
  }
  wss.handleUpgrade(req, socket, head, ws => {
    ws.person = person
    ws.on("close", () => {
      for (const id of ws.peerIds ?? []) peers.delete(id)
      presenceChanged()
    })
    wss.emit("connection", ws, req)
  })
})

const bind = arg(argv, "--bind", "127.0.0.1:8080")
const [host, port] = [bind.slice(0, bind.lastIndexOf(":")), Number(bind.slice(bind.lastIndexOf(":") + 1))]
server.listen(port, host, () => {
  const addr = server.address()
  const base = `http://${addr.address}:${addr.port}`
  console.log(`rapporteur listening on ${base}`)
  if (loadStore(file).invites.length === 0) {
    console.log(`co-facilitator invite: ${mintInvite(file, { meeting: slug, role: "co-facilitator", name: "Co-facilitator" }, base).url}`)
  }
})
process.on("SIGTERM", () => process.exit(0))

// Client-side helpers for the end-to-end tests: a per-test environment (one real server, the
// clients it opened, all closed at the end), stock automerge-repo clients connected with an invite
// token, a frame log of each client's WebSocket (to see what the server answered), raw WebSocket
// handshakes, and small readers for the document shapes of docs/schema.md.
import http from "node:http"
import { randomBytes, randomUUID } from "node:crypto"
import { Repo, cbor } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { next as A } from "@automerge/automerge"
import WebSocket from "ws"
import { startServer, api, waitFor, DEMO_SLUG } from "./server.mjs"

export { A, DEMO_SLUG, api, waitFor }

/** The document id of an `automerge:<id>` URL (what sync messages carry as `documentId`). */
export function documentIdOf(url) {
  return url.replace(/^automerge:/, "")
}

/** A JSON copy of a document: Text and ImmutableString both become plain strings. */
export function plain(doc) {
  return JSON.parse(JSON.stringify(doc))
}

/** All bullets of a group-outcome document, flattened, as plain objects with `sectionIndex`. */
export function allBullets(doc) {
  const out = []
  for (const [sectionIndex, section] of (plain(doc).sections ?? []).entries()) {
    for (const b of section.bullets ?? []) out.push({ ...b, sectionIndex })
  }
  return out
}

export function findBullet(doc, id) {
  return allBullets(doc).find(b => b.id === id)
}

/**
 * A new bullet as docs/schema.md defines it. Scalar strings are ImmutableString (schema `string`);
 * `text` is a JS string, which Automerge stores as a Text object (schema `Text`).
 */
export function newBullet(personId, text, { proposedBy = ["Mexico"], tags = [], status = "proposed" } = {}) {
  return {
    id: new A.ImmutableString(randomUUID()),
    text,
    proposedBy: proposedBy.map(s => new A.ImmutableString(s)),
    tags: tags.map(s => new A.ImmutableString(s)),
    status: new A.ImmutableString(status),
    createdBy: new A.ImmutableString(personId),
    createdAt: Date.now(),
  }
}

/** Adds a bullet to section `sectionIndex` of a group outcome handle; returns its id. */
export function addBullet(handle, personId, text, { sectionIndex = 0, ...opts } = {}) {
  const b = newBullet(personId, text, opts)
  handle.change(d => {
    d.sections[sectionIndex].bullets.push(b)
  })
  return b.id.toString()
}

/** Path of the bullet with `id` inside a live (proxied or plain) doc: [sectionIndex, bulletIndex]. */
export function bulletPath(doc, id) {
  for (let s = 0; s < doc.sections.length; s++) {
    const bullets = doc.sections[s].bullets
    for (let i = 0; i < bullets.length; i++) {
      if (String(bullets[i].id) === id) return [s, i]
    }
  }
  throw new Error(`no bullet ${id}`)
}

/** Splices `insert` into the text of bullet `id` at `pos` (negative: from the end). */
export function spliceBullet(handle, id, pos, del, insert) {
  handle.change(d => {
    const [s, i] = bulletPath(d, id)
    const len = d.sections[s].bullets[i].text.length
    const at = pos < 0 ? len + pos + 1 : pos
    A.splice(d, ["sections", s, "bullets", i, "text"], at, del, insert)
  })
}

/** The index document's entry for group `n`, as a plain object. */
export function indexGroup(indexDoc, n) {
  return plain(indexDoc).groups?.find(g => g.number === n)
}

/**
 * Sends an HTTP upgrade to `url` (with optional headers) and resolves with the status code the
 * server answered: 101 when it accepted the WebSocket, else the error status.
 */
export function upgradeStatus(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url.replace(/^ws/, "http"))
    const req = http.request(u, {
      agent: false, // a fresh connection per handshake: never reuse one the server has closed
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        ...headers,
      },
    })
    req.on("upgrade", (res, socket) => {
      socket.destroy()
      resolve(res.statusCode)
    })
    req.on("response", res => {
      res.resume()
      resolve(res.statusCode)
    })
    req.on("error", reject)
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to upgrade of ${url}`)))
    req.end()
  })
}

/** Attaches a frame log to a WebSocket: every frame in and out, decoded from CBOR. */
function logFrames(socket, log) {
  socket.addEventListener("message", event => {
    try {
      log.push({ dir: "in", msg: cbor.decode(new Uint8Array(event.data)) })
    } catch (e) {
      log.push({ dir: "in", undecodable: true, error: String(e) })
    }
  })
  const send = socket.send.bind(socket)
  socket.send = (data, ...rest) => {
    try {
      log.push({ dir: "out", msg: cbor.decode(new Uint8Array(data)) })
    } catch {
      log.push({ dir: "out", undecodable: true })
    }
    return send(data, ...rest)
  }
}

/**
 * One test's world: a server, and every client opened through it, all closed by `close()`
 * (registered with `t.after`).
 */
export class Env {
  static async start(t, opts = {}) {
    const env = new Env()
    env.server = await startServer(opts)
    t.after(() => env.close())
    return env
  }

  clients = []
  sockets = []

  /** Mints an invite with the CLI; returns { token, person } (person from GET /api/me). */
  async person(role, { group, name } = {}) {
    name ??= `${role}${group ? ` ${group}` : ""} ${randomUUID().slice(0, 8)}`
    const token = this.server.invite(role, { group, name })
    const me = await api(this.server, token, "GET", "/api/me")
    if (me.status !== 200) throw new Error(`GET /api/me for ${role}: ${me.status} ${JSON.stringify(me.body)}`)
    return { token, name, role, group, person: me.body.person, id: me.body.person.id }
  }

  async meeting(token) {
    const res = await api(this.server, token, "GET", `/api/meetings/${DEMO_SLUG}`)
    if (res.status !== 200) throw new Error(`GET meeting: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body
  }

  /** URLs of the demo meeting's documents: { index, summary, group: {1: url, ...} }. */
  async urls(token) {
    const m = await this.meeting(token)
    const group = {}
    for (const g of m.groups) group[g.number] = g.outcomeDocUrl
    return { index: m.indexDocUrl, summary: m.summaryDocUrl, group, meeting: m }
  }

  /**
   * A stock automerge-repo client connected with the invite token on the URL, keeping nothing
   * unless given a `storage` adapter (a device that keeps its documents, and its sync state with
   * the server, as the stock file-system storage does). Resolves once the server answered `join`
   * with `peer`. `client.log` records every frame of the first socket. `retryInterval` (ms) is the
   * adapter's reconnection delay.
   */
  async connect(who, { retryInterval, storage } = {}) {
    const token = typeof who === "string" ? who : who.token
    const url = `${this.server.wsUrl}?token=${token}`
    // A refused upgrade would make the stock adapter throw from its error handler; check first so
    // that the failure is named.
    const status = await upgradeStatus(url)
    if (status !== 101) throw new Error(`WebSocket upgrade with a valid token answered ${status}`)
    const adapter = new WebSocketClientAdapter(url, retryInterval)
    const repo = new Repo({ network: [adapter], storage })
    const client = { repo, adapter, log: [], who, closed: false }
    this.clients.push(client)
    await waitFor(() => adapter.socket, { what: "client socket" })
    logFrames(adapter.socket, client.log)
    await waitFor(() => repo.peers.length > 0, { what: "the server's answer to join" })
    client.find = url => repo.find(url)
    return client
  }

  async disconnect(client) {
    if (client.closed) return
    client.closed = true
    // The stock adapter schedules a reconnection when its socket closes, and shutting down does not
    // cancel one already scheduled: make it a no-op so that a closed client stays closed.
    client.adapter.connect = () => {}
    await client.repo.shutdown()
  }

  /** A raw `ws` WebSocket; resolves once open. */
  async rawSocket(token) {
    const ws = new WebSocket(`${this.server.wsUrl}?token=${token}`)
    ws.binaryType = "arraybuffer"
    this.sockets.push(ws)
    const received = []
    ws.on("message", data => received.push(cbor.decode(new Uint8Array(data))))
    await new Promise((resolve, reject) => {
      ws.once("open", resolve)
      ws.once("error", reject)
    })
    ws.on("error", () => {}) // a later error shows as the close event
    const closed = new Promise(resolve => ws.once("close", (code, reason) => resolve({ code, reason: String(reason) })))
    const senderId = `raw-${randomUUID()}`
    return {
      ws,
      received,
      closed,
      senderId,
      send: msg => ws.send(cbor.encode(msg)),
    }
  }

  /** Shuts every client down, then restarts the server on the same database. */
  async restart({ kill = false } = {}) {
    for (const c of this.clients) await this.disconnect(c)
    if (kill) await this.server.kill()
    else await this.server.stop()
    this.server = await startServer({ dir: this.server.dir, databaseUrl: this.server.databaseUrl })
  }

  async close() {
    for (const c of this.clients) {
      try {
        await this.disconnect(c)
      } catch {}
    }
    for (const ws of this.sockets) ws.terminate()
    if (this.server) {
      await this.server.stop()
      this.server.cleanup()
    }
  }
}

/**
 * A barrier on one client's connection: loads another document over it and resolves once that
 * document is ready. The server reads a connection's frames in order, so by then it has taken in
 * (accepted or refused) every sync or ephemeral message the client sent before. `url` must be a
 * document this client has not loaded yet.
 */
export async function roundTrip(client, url) {
  const handle = await client.repo.find(url)
  return handle
}

/**
 * A barrier after a client's local change to `documentId` (made at log position `mark`): waits
 * until the client has sent a sync message for it, then makes a round trip on the connection
 * (loading `viaUrls[0]`); if a sync message carrying changes went out after that round trip began
 * (the server asked for them), makes another one with the next URL. Afterwards the server has
 * taken in whatever the client offered. `viaUrls`: documents this client has not loaded yet.
 */
export async function settle(client, documentId, mark, viaUrls) {
  await waitFor(() => sentSyncMessages(client, documentId, mark).length > 0, {
    what: "the client to send a sync message for its change",
  })
  const withChanges = from =>
    client.log
      .slice(from)
      .some(f => f.dir === "out" && f.msg?.type === "sync" && f.msg.documentId === documentId &&
        A.decodeSyncMessage(f.msg.data).changes.length > 0)
  let via = 0
  for (;;) {
    const from = client.log.length
    if (via >= viaUrls.length) throw new Error("settle: out of documents for round trips")
    await roundTrip(client, viaUrls[via++])
    if (!withChanges(from)) return { changesSent: withChanges(mark) }
  }
}

/** Sync messages `client` sent for `documentId` from log position `mark` on, decoded. */
export function sentSyncMessages(client, documentId, mark = 0) {
  return client.log
    .slice(mark)
    .filter(f => f.dir === "out" && f.msg?.documentId === documentId && (f.msg.type === "sync" || f.msg.type === "request"))
    .map(f => A.decodeSyncMessage(f.msg.data))
}

/** Incoming `error` frames in a client's log. */
export function errorsIn(client) {
  return client.log.filter(f => f.dir === "in" && f.msg?.type === "error").map(f => f.msg)
}

/** Records every ephemeral message a handle receives (decoded `message`). */
export function recordEphemeral(handle) {
  const got = []
  handle.on("ephemeral-message", ({ message, senderId }) => got.push({ message, senderId }))
  return got
}

/** A text of `n` words. */
export function words(n, stem = "word") {
  return Array.from({ length: n }, (_, i) => `${stem}${i + 1}`).join(" ")
}

/** Same heads and same content. */
export function sameDoc(a, b) {
  const ha = [...A.getHeads(a)].sort().join()
  const hb = [...A.getHeads(b)].sort().join()
  return ha === hb && JSON.stringify(a) === JSON.stringify(b)
}

/**
 * A hand-driven peer on a raw socket, for what the stock client never does: it joins, loads
 * documents with the plain Automerge sync protocol, and can push a change to the server
 * unsolicited (a sync message carrying the change, whatever the server's sync state asked for).
 */
export async function rawPeer(env, token) {
  const raw = await env.rawSocket(token)
  raw.send({ type: "join", senderId: raw.senderId, peerMetadata: { isEphemeral: true }, supportedProtocolVersions: ["1"] })
  const peer = await waitFor(() => raw.received.find(m => m.type === "peer"), { what: "peer message on the raw socket" })
  const serverId = peer.senderId
  const docs = new Map() // documentId -> { doc, state }
  const handled = new Set()
  const pump = () => {
    for (const m of raw.received) {
      if (handled.has(m) || m.type !== "sync" || !docs.has(m.documentId)) continue
      handled.add(m)
      const entry = docs.get(m.documentId)
      ;[entry.doc, entry.state] = A.receiveSyncMessage(entry.doc, entry.state, m.data)
      const [state, out] = A.generateSyncMessage(entry.doc, entry.state)
      entry.state = state
      if (out && out.length > 0) raw.send({ type: "sync", senderId: raw.senderId, targetId: serverId, documentId: m.documentId, data: out })
    }
  }
  raw.ws.on("message", () => setImmediate(pump))
  return {
    raw,
    serverId,
    errors: () => raw.received.filter(m => m.type === "error"),
    doc: documentId => docs.get(documentId)?.doc,
    /** Loads a document; resolves once `ready(doc)` holds. */
    async load(documentId, ready = doc => A.getHeads(doc).length > 0) {
      const entry = { doc: A.init(), state: A.initSyncState() }
      docs.set(documentId, entry)
      const [state, out] = A.generateSyncMessage(entry.doc, entry.state)
      entry.state = state
      raw.send({ type: "request", senderId: raw.senderId, targetId: serverId, documentId, data: out })
      await waitFor(() => ready(docs.get(documentId).doc), { what: `raw peer to load ${documentId}` })
      return docs.get(documentId).doc
    },
    /**
     * Makes a local change and sends it to the server in a sync message; returns the new heads.
     * `actor` (hex) writes it with that Automerge actor id instead of this peer's own, as a
     * forger would; such a change stays out of this peer's copy (whose later sync would clash
     * with the real owner's next change of the same sequence number).
     */
    push(documentId, fn, { actor } = {}) {
      const entry = docs.get(documentId)
      const before = A.getHeads(entry.doc)
      const next = A.change(actor ? A.clone(entry.doc, { actor }) : entry.doc, fn)
      if (!actor) entry.doc = next
      const change = A.getLastLocalChange(next)
      const data = A.encodeSyncMessage({
        heads: A.getHeads(next),
        need: [],
        have: [{ lastSync: before, bloom: new Uint8Array(0) }],
        changes: [change],
      })
      raw.send({ type: "sync", senderId: raw.senderId, targetId: serverId, documentId, data })
      return A.getHeads(next)
    },
  }
}

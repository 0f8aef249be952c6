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
   * A stock automerge-repo client (no storage) connected with the invite token on the URL.
   * Resolves once the server answered `join` with `peer`. `client.log` records every frame.
   */
  async connect(who) {
    const token = typeof who === "string" ? who : who.token
    const url = `${this.server.wsUrl}?token=${token}`
    // A refused upgrade would make the stock adapter throw from its error handler; check first so
    // that the failure is named.
    const status = await upgradeStatus(url)
    if (status !== 101) throw new Error(`WebSocket upgrade with a valid token answered ${status}`)
    const adapter = new WebSocketClientAdapter(url)
    const repo = new Repo({ network: [adapter] })
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
    this.server = await startServer({ dir: this.server.dir })
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
 * Resolves once the server has answered, on `client`'s connection, the first sync message for
 * `documentId` that the client sent at or after log position `mark` (any frame about that
 * document, or an `error`, counts as the answer). Used as a barrier: after it, the server has
 * processed (accepted or refused) the change that sync message carried.
 */
export async function serverAnswered(client, documentId, mark, { timeout = 10_000 } = {}) {
  const sentAt = await waitFor(
    () => {
      for (let i = mark; i < client.log.length; i++) {
        const f = client.log[i]
        if (f.dir === "out" && f.msg?.type === "sync" && f.msg.documentId === documentId) return i + 1
      }
      return 0
    },
    { timeout, what: `the client's sync message for ${documentId}` },
  )
  return waitFor(
    () => {
      for (let i = sentAt; i < client.log.length; i++) {
        const f = client.log[i]
        if (f.dir !== "in") continue
        if (f.msg?.documentId === documentId || f.msg?.type === "error") return f.msg
      }
      return null
    },
    { timeout, what: `the server's answer about ${documentId}` },
  )
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

// Live documents: one automerge-repo Repo for the page (WebSocket to /sync, IndexedDB for offline),
// the connection state shown in the header, and LiveDoc, a handle wrapper that views subscribe to.
//
// LiveDoc also watches that the server acknowledges local changes. The server refuses a change it
// may not accept (wrong role, locked group, broken schema) and tells the peer with a protocol
// `error` message, which the stock client only logs; the refused change would then stay in the local
// copy forever, invisible to everyone else. So a change counts as acknowledged only once the
// server's heads (from the sync state) include it; on an `error` naming the document, or when a
// change stays unacknowledged while connected, the page says why and the local copy is replaced by
// the server's (local IndexedDB copy deleted, document found again).
import * as A from "@automerge/automerge"
import {
  Repo,
  cbor,
  isValidAutomergeUrl,
  parseAutomergeUrl,
  type AutomergeUrl,
  type DocHandle,
  type DocHandleChangePayload,
  type DocumentId,
  type PeerId,
} from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb"
import { plain } from "./plain"

export type ConnectionState = "connecting" | "online" | "offline"

/** How long a local change may stay unacknowledged while connected before the page says so. */
const ACK_TIMEOUT_MS = 8_000
/** A second exchange-level refusal within this window resets the local copy instead. */
const RESYNC_WINDOW_MS = 30_000
const MIN_RETRY_MS = 1_000
const MAX_RETRY_MS = 30_000

interface ServerError {
  type: "error"
  message?: string
  documentId?: string
}

/**
 * The stock client adapter, plus: protocol `error` messages are passed to the app instead of only
 * being logged, and reconnection backs off exponentially. The stock adapter retries every
 * `retryInterval`; this one lets those ticks through only once the current back-off has passed.
 */
class SocketAdapter extends WebSocketClientAdapter {
  onServerError: (err: ServerError) => void = () => {}
  #backoff = MIN_RETRY_MS
  #nextAttempt = 0

  override connect(peerId: PeerId, peerMetadata?: Parameters<WebSocketClientAdapter["connect"]>[1]): void {
    const now = Date.now()
    const socket = this.browserSocket
    const open = socket !== undefined && socket.readyState <= WebSocket.OPEN
    if (socket && (open || now < this.#nextAttempt)) return
    this.#nextAttempt = now + this.#backoff
    this.#backoff = Math.min(MAX_RETRY_MS, this.#backoff * 2)
    super.connect(peerId, peerMetadata)
  }

  /** The adapter's socket, typed as the browser's WebSocket. */
  get browserSocket(): WebSocket | undefined {
    return this.socket as WebSocket | undefined
  }

  /** Connected: the next outage starts again from the shortest delay. */
  resetBackoff(): void {
    this.#backoff = MIN_RETRY_MS
    this.#nextAttempt = 0
  }

  /**
   * The stock repo passes every ephemeral message it receives on to its other peers. The browser's
   * only peer is the server, which relays with the original sender's id and treats a message whose
   * senderId is not this connection's as forged (it closes the connection). So only this peer's own
   * ephemeral messages go out.
   */
  override send(message: Parameters<WebSocketClientAdapter["send"]>[0]): void {
    if (message.type === "ephemeral" && message.senderId !== this.peerId) return
    super.send(message)
  }

  override receiveMessage(messageBytes: Uint8Array): void {
    try {
      const decoded = cbor.decode<{ type?: string }>(new Uint8Array(messageBytes))
      if (decoded?.type === "error") this.onServerError(decoded as ServerError)
    } catch {
      // the stock adapter logs undecodable frames itself
    }
    super.receiveMessage(messageBytes)
  }
}

type Listener<A extends unknown[]> = (...args: A) => void

class Emitter<A extends unknown[]> {
  #listeners = new Set<Listener<A>>()
  on(fn: Listener<A>): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }
  emit(...args: A): void {
    for (const fn of [...this.#listeners]) fn(...args)
  }
}

export interface ChangeInfo {
  local: boolean
  patches: A.Patch[]
}

export type LiveStatus = "loading" | "ready" | "unavailable" | "recovering"

/** A document the page shows: re-findable, so views survive a reset to the server's copy. */
export class LiveDoc<T> {
  readonly id: DocumentId
  handle: DocHandle<T> | null = null
  doc: A.Doc<T> | undefined
  status: LiveStatus = "loading"
  /** Why the local copy was replaced, shown to the person until dismissed. */
  problem: string | null = null
  readonly changed = new Emitter<[ChangeInfo]>()
  readonly ephemeral = new Emitter<[unknown, PeerId]>()
  #local = false
  #lastResync = 0
  #viewOf: A.Doc<T> | undefined
  #view: T | undefined
  #unsubscribe: (() => void)[] = []
  /** Local change hash → time made, until the server's heads include it. */
  #pending = new Map<string, number>()
  #serverHeads: string[] | null = null

  constructor(
    private readonly live: Live,
    readonly url: AutomergeUrl,
  ) {
    this.id = parseAutomergeUrl(url).documentId
    void this.#find()
  }

  async #find(): Promise<void> {
    this.status = "loading"
    let handle: DocHandle<T>
    try {
      // an unavailable handle still becomes ready when a peer later has the document
      handle = await this.live.repo.find<T>(this.url, { allowableStates: ["ready", "unavailable"] })
    } catch {
      this.status = "unavailable"
      this.changed.emit({ local: false, patches: [] })
      return
    }
    if (handle.state === "ready") {
      this.#attach(handle)
      return
    }
    this.status = "unavailable"
    this.changed.emit({ local: false, patches: [] })
    await handle.whenReady(["ready"])
    if (this.handle === null && this.status === "unavailable") this.#attach(handle)
  }

  /** Asks the server again for a document it did not have (offline start, server restart). */
  retry(): void {
    if (this.status !== "unavailable" || this.handle) return
    const handle = this.live.repo.handles[this.id]
    if (handle?.state === "unavailable") {
      // an unavailable handle is final in the repo's cache: drop it and look again
      void this.live.repo.removeFromCache(this.id).finally(() => void this.#find())
    }
  }

  #attach(handle: DocHandle<T>): void {
    this.handle = handle
    this.doc = handle.doc()
    this.status = "ready"
    const onChange = (p: DocHandleChangePayload<T>) => {
      this.doc = p.doc
      this.changed.emit({ local: this.#local, patches: p.patches })
    }
    const onEphemeral = (p: { message: unknown; senderId: PeerId }) => this.ephemeral.emit(p.message, p.senderId)
    handle.on("change", onChange)
    handle.on("ephemeral-message", onEphemeral)
    this.#unsubscribe = [
      () => handle.off("change", onChange),
      () => handle.off("ephemeral-message", onEphemeral),
    ]
    this.changed.emit({ local: false, patches: [] })
  }

  /** Makes a local change; returns false when the document cannot be changed now. */
  change(fn: (doc: T) => void): boolean {
    if (!this.handle || this.status !== "ready") return false
    this.#local = true
    try {
      this.handle.change(d => fn(d))
    } finally {
      this.#local = false
    }
    const last = A.getLastLocalChange(this.handle.doc())
    if (last) this.#pending.set(A.decodeChange(last).hash, Date.now())
    return true
  }

  broadcast(message: Record<string, unknown>): void {
    if (this.handle && this.status === "ready") this.handle.broadcast(message)
  }

  /** The document as plain JavaScript (scalar strings as strings), cached per version. */
  get view(): T | undefined {
    if (!this.doc) return undefined
    if (this.#viewOf !== this.doc) {
      this.#viewOf = this.doc
      this.#view = plain<T>(this.doc)
    }
    return this.#view
  }

  heads(): string[] {
    return this.doc ? A.getHeads(this.doc) : []
  }

  /** What the acknowledgement watchdog knows, for diagnostics. */
  diagnostics(): { status: LiveStatus; heads: string[]; serverHeads: string[] | null; pending: string[] } {
    return { status: this.status, heads: this.heads(), serverHeads: this.#serverHeads, pending: [...this.#pending.keys()] }
  }

  /** Local changes not yet acknowledged by the server. */
  get unacknowledged(): number {
    return this.#pending.size
  }

  /** Called with the server's heads from the sync state. */
  serverHeads(heads: string[]): void {
    this.#serverHeads = heads
    this.#settle()
  }

  #settle(): void {
    if (this.#pending.size === 0 || !this.#serverHeads || !this.doc) return
    const server = new Set(this.#serverHeads)
    let since: Set<string>
    try {
      // changes the server's heads do not include; every other local change is acknowledged
      since = new Set(A.getChanges(A.view(this.doc, this.#serverHeads), this.doc).map(c => A.decodeChange(c).hash))
    } catch {
      return // the server has changes we have not received yet: wait for them
    }
    for (const hash of [...this.#pending.keys()]) {
      if (server.has(hash) || !since.has(hash)) this.#pending.delete(hash)
    }
  }

  /** True when a local change has waited too long for the server since it could be sent. */
  overdue(now: number, connectedSince: number): boolean {
    this.#settle()
    for (const at of this.#pending.values()) if (now - Math.max(at, connectedSince) > ACK_TIMEOUT_MS) return true
    return false
  }

  /** Drops the local copy and takes the server's. */
  async recover(reason: string): Promise<void> {
    this.#pending.clear()
    await this.#reload(async () => {
      this.problem = reason
      await this.live.repo.storageSubsystem?.removeDoc(this.id)
    })
  }

  /**
   * Keeps the local copy but starts syncing it afresh, so that everything the server lacks is sent
   * again. For a refusal that is about the exchange (changes that arrived before the changes they
   * depend on) rather than about the content. A second such refusal soon after resets the copy.
   */
  async resync(reason: string): Promise<void> {
    const now = Date.now()
    if (now - this.#lastResync < RESYNC_WINDOW_MS) return this.recover(reason)
    this.#lastResync = now
    // unacknowledged changes stay on watch, from now: if the fresh exchange does not bring them
    // to the server either, the next check resets the copy
    for (const hash of this.#pending.keys()) this.#pending.set(hash, now)
    await this.#reload(async () => {})
  }

  async #reload(beforeFind: () => Promise<void>): Promise<void> {
    if (this.status === "recovering") return
    this.status = "recovering"
    this.changed.emit({ local: false, patches: [] })
    const repo = this.live.repo
    await repo.flush([this.id]).catch(() => {})
    for (const off of this.#unsubscribe) off()
    this.#unsubscribe = []
    this.#serverHeads = null
    this.handle = null
    try {
      await repo.removeFromCache(this.id)
    } catch {
      // not cached
    }
    await beforeFind()
    await this.#find()
  }

  dismissProblem(): void {
    this.problem = null
    this.changed.emit({ local: false, patches: [] })
  }
}

/** The page's repo, its connection and its live documents. */
export class Live {
  readonly repo: Repo
  readonly adapter: SocketAdapter
  state: ConnectionState = "connecting"
  readonly stateChanged = new Emitter<[ConnectionState]>()
  /** Fired when the server acknowledged something: views re-render their "saved" indicators. */
  readonly synced = new Emitter<[]>()
  #docs = new Map<string, LiveDoc<unknown>>()
  #serverPeer: PeerId | null = null
  #connectedSince = 0

  constructor(syncUrl: string) {
    this.adapter = new SocketAdapter(syncUrl, MIN_RETRY_MS)
    this.adapter.onServerError = err => this.#onServerError(err)
    this.repo = new Repo({
      network: [this.adapter],
      storage: new IndexedDBStorageAdapter("rapporteur"),
      // the browser syncs every document it opens with the server (its only peer); it never
      // creates documents, so announcing cannot leak anything the server did not give it
    })
    this.adapter.on("peer-candidate", ({ peerId }) => {
      this.#serverPeer = peerId
      this.#connectedSince = Date.now()
      this.adapter.resetBackoff()
      this.#setState("online")
      for (const doc of this.#docs.values()) doc.retry()
    })
    this.adapter.on("peer-disconnected", () => {
      this.#serverPeer = null
      this.#setState(navigator.onLine ? "connecting" : "offline")
    })
    this.repo.synchronizer.on("sync-state", ({ documentId, peerId, syncState }) => {
      if (peerId !== this.#serverPeer) return
      const theirHeads = (syncState as { theirHeads?: string[] | null }).theirHeads
      if (theirHeads) this.#docs.get(documentId)?.serverHeads(theirHeads)
      this.synced.emit()
    })
    window.addEventListener("offline", () => {
      // the socket may linger after the network is gone; close it so state and retries are honest
      this.adapter.browserSocket?.close()
      this.#setState("offline")
    })
    window.addEventListener("online", () => {
      this.adapter.resetBackoff()
      this.#setState("connecting")
      if (this.adapter.peerId) this.adapter.connect(this.adapter.peerId, this.adapter.peerMetadata)
    })
    if (!navigator.onLine) this.state = "offline"
    setInterval(() => this.#checkAcknowledgements(), 1_000)
  }

  /** Every live document, for diagnostics. */
  get docs(): LiveDoc<unknown>[] {
    return this.#uniqueDocs()
  }

  doc<T>(url: string): LiveDoc<T> {
    let doc = this.#docs.get(url)
    if (!doc) {
      if (!isValidAutomergeUrl(url)) throw new Error(`not a document URL: ${url}`)
      doc = new LiveDoc<unknown>(this, url)
      this.#docs.set(url, doc)
      this.#docs.set(doc.id, doc)
    }
    return doc as LiveDoc<T>
  }

  #setState(state: ConnectionState): void {
    if (state === this.state) return
    this.state = state
    this.stateChanged.emit(state)
  }

  #uniqueDocs(): LiveDoc<unknown>[] {
    return [...new Set(this.#docs.values())]
  }

  /**
   * A refusal names its document ("document <id>: <why>", or a `documentId` key). An error that
   * names none is about the connection, not an edit: it is logged, and the acknowledgement watchdog
   * still catches any change it may have cost.
   */
  #onServerError(err: ServerError): void {
    const why = err.message?.replace(/^document \S+: /, "")
    const reason = `The server refused a change${why ? `: ${why}` : ""}.`
    const named = err.documentId ? this.#docs.get(err.documentId) : undefined
    const targets = named ? [named] : this.#uniqueDocs().filter(d => err.message?.includes(d.id))
    if (targets.length === 0) console.warn("server error:", err.message)
    const exchangeOnly = /depends on changes/i.test(err.message ?? "")
    for (const doc of targets) void (exchangeOnly ? doc.resync(reason) : doc.recover(reason))
  }

  #checkAcknowledgements(): void {
    if (this.state !== "online") return
    const now = Date.now()
    for (const doc of this.#uniqueDocs()) {
      if (doc.status === "ready" && doc.overdue(now, this.#connectedSince)) {
        console.warn("unacknowledged changes", doc.id, JSON.stringify(doc.diagnostics()))
        void doc.resync("Your latest edits were not accepted by the server.")
      }
    }
  }
}

export function syncUrl(): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:"
  return `${proto}//${location.host}/sync`
}

// Group outcome page. For the group's rapporteur and moderator and for co-facilitators while the
// group is not locked: the live editor (bullets as Automerge Text edited by splices, presence, live
// format checks, submission). For everyone else, and after lock: the same content read-only.
import * as A from "@automerge/automerge"
import type { ImmutableString } from "@automerge/automerge"
import { html, nothing, type TemplateResult } from "lit-html"
import { repeat } from "lit-html/directives/repeat.js"
import { ApiError, groupExportUrl, submitGroup } from "../api"
import type { App, View } from "../app"
import { checkOutcome, indexViolations, wordCount } from "../format"
import type { LiveDoc } from "../live"
import { homePath, summaryPath } from "../router"
import {
  applySplices,
  diffText,
  splicesFromPatches,
  transformSelection,
  type Splice,
  type TextPatch,
} from "../textdiff"
import { plain, scalar, str } from "../plain"
import { formatInstant } from "../time"
import {
  BULLET_STATUSES,
  DEFAULT_RULES,
  canEditGroup,
  isCoFacilitator,
  type Bullet,
  type BulletStatus,
  type GroupDoc,
  type OutcomeSection,
  type Violation,
} from "../types"
import { counts, initials, loading, personColor, roleName, stateBadge } from "./common"
import { slotLine } from "./home"

/** GCM objectives, the default tag vocabulary. */
const OBJECTIVE_TAGS = Array.from({ length: 23 }, (_, i) => `gcm-objective-${i + 1}`)
/** Presence entries older than this are dropped (editors re-announce every PRESENCE_EVERY_MS). */
const PRESENCE_TTL_MS = 40_000
const PRESENCE_EVERY_MS = 15_000

interface Peer {
  person: string
  name: string
  role: string
  bulletId: string | null
  at: number
}

/** A bullet as stored: scalar strings are ImmutableString, `text` is Text (a JS string). */
interface StoredBullet {
  id: ImmutableString
  text: string
  proposedBy: ImmutableString[]
  tags: ImmutableString[]
  status: ImmutableString
  createdBy: ImmutableString
  createdAt: number
}

interface StoredDoc {
  sections: { bullets: StoredBullet[] }[]
}

interface Located {
  si: number
  bi: number
  section: OutcomeSection
  bullet: Bullet
}

function locate(doc: GroupDoc | undefined, bulletId: string): Located | null {
  const sections = doc?.sections ?? []
  for (let si = 0; si < sections.length; si++) {
    const section = sections[si]!
    const bullets = section.bullets ?? []
    for (let bi = 0; bi < bullets.length; bi++) {
      if (str(bullets[bi]?.id) === bulletId) return { si, bi, section, bullet: bullets[bi]! }
    }
  }
  return null
}

/** Bullet ids in reading order, across sections. */
function order(doc: GroupDoc | undefined): string[] {
  return (doc?.sections ?? []).flatMap(s => (s.bullets ?? []).map(b => str(b.id)))
}

function sortedEqual(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  const x = [...a].sort()
  const y = [...b].sort()
  return x.every((v, i) => v === y[i])
}

function autosize(ta: HTMLTextAreaElement): void {
  ta.style.height = "auto"
  ta.style.height = `${ta.scrollHeight + 2}px`
}

type SubmitState =
  | { kind: "idle" }
  | { kind: "busy" }
  | { kind: "done"; version: number; at: number }
  | { kind: "failed"; message: string; violations: Violation[] }

export class GroupView implements View {
  #doc: LiveDoc<GroupDoc> | null = null
  #offDoc: (() => void)[] = []
  /** The text each textarea was last synchronised with, per bullet id. */
  #shown = new Map<string, string>()
  #focusNext: { bulletId: string; at: "start" | "end" | number } | null = null
  #peers = new Map<string, Peer>()
  #myBullet: string | null = null
  #timer: ReturnType<typeof setInterval> | undefined
  #submit: SubmitState = { kind: "idle" }
  #drafts = new Map<string, string>() // chip inputs being typed, per bullet+field

  constructor(
    private readonly app: App,
    private readonly n: number,
  ) {
    this.#timer = setInterval(() => {
      this.#announce()
      this.#expirePeers()
    }, PRESENCE_EVERY_MS)
  }

  dispose(): void {
    clearInterval(this.#timer)
    if (this.#myBullet !== null) this.#doc?.broadcast({ type: "cursor", bulletId: null })
    for (const off of this.#offDoc) off()
  }

  /** Subscribes once the group's document URL is known (it comes with the index). */
  #bind(): LiveDoc<GroupDoc> | null {
    if (this.#doc) return this.#doc
    const doc = this.app.meeting.groupDoc(this.n)
    if (!doc) return null
    this.#doc = doc
    this.#offDoc.push(
      doc.changed.on(info => {
        if (!info.local) this.#syncTextareas(info.patches)
      }),
      doc.ephemeral.on(message => this.#onEphemeral(message)),
    )
    queueMicrotask(() => this.#announce())
    return doc
  }

  get #editable(): boolean {
    const entry = this.app.meeting.group(this.n)
    return canEditGroup(this.app.me, this.n) && entry?.state !== "locked" && this.#doc?.status === "ready"
  }

  // ---- presence -------------------------------------------------------------------------------

  #announce(): void {
    if (canEditGroup(this.app.me, this.n)) this.#doc?.broadcast({ type: "cursor", bulletId: this.#myBullet })
  }

  #onEphemeral(message: unknown): void {
    const m = message as { type?: string; bulletId?: unknown; sender?: { person?: string; name?: string; role?: string } }
    if (m?.type !== "cursor" || !m.sender?.person) return
    if (m.sender.person === this.app.me.id) return
    this.#peers.set(m.sender.person, {
      person: m.sender.person,
      name: m.sender.name ?? "Someone",
      role: m.sender.role ?? "",
      bulletId: typeof m.bulletId === "string" ? m.bulletId : null,
      at: Date.now(),
    })
    this.app.requestRender()
  }

  #expirePeers(): void {
    const now = Date.now()
    let changed = false
    for (const [k, p] of this.#peers) {
      if (now - p.at > PRESENCE_TTL_MS) {
        this.#peers.delete(k)
        changed = true
      }
    }
    if (changed) this.app.requestRender()
  }

  #setMyBullet(bulletId: string | null): void {
    if (bulletId === this.#myBullet) return
    this.#myBullet = bulletId
    this.#announce()
  }

  // ---- text synchronisation ---------------------------------------------------------------------

  /**
   * Brings every textarea up to date with the document, keeping each person's selection on the
   * same characters. Runs synchronously on remote changes so that the next keystroke is diffed
   * against the text the document really has.
   */
  #syncTextareas(patches: TextPatch[] | null): void {
    const doc = this.#doc?.view
    if (!doc) return
    const areas = document.querySelectorAll<HTMLTextAreaElement>("textarea[data-bullet]")
    if (areas.length === 0) return
    const paths = new Map<string, (string | number)[]>()
    ;(doc.sections ?? []).forEach((s, si) =>
      (s.bullets ?? []).forEach((b, bi) => paths.set(b.id, ["sections", si, "bullets", bi, "text"])),
    )
    for (const ta of areas) {
      const id = ta.dataset.bullet!
      const path = paths.get(id)
      if (!path) continue
      const text = String(locate(doc, id)?.bullet.text ?? "")
      const current = ta.value
      if (current === text) {
        this.#shown.set(id, text)
        continue
      }
      let splices: Splice[] | null = patches ? splicesFromPatches(patches, path) : null
      if (!splices || applySplices(current, splices) !== text) {
        const d = diffText(current, text)
        splices = d ? [d] : []
      }
      const focused = document.activeElement === ta
      const sel = { start: ta.selectionStart, end: ta.selectionEnd, direction: ta.selectionDirection }
      ta.value = text
      this.#shown.set(id, text)
      if (focused) {
        const t = transformSelection(sel, splices)
        ta.setSelectionRange(t.start, t.end, t.direction)
      }
      autosize(ta)
    }
  }

  #onInput(e: Event, bulletId: string): void {
    const ta = e.target as HTMLTextAreaElement
    const doc = this.#doc
    if (!doc?.view || !this.#editable) return
    const before = this.#shown.get(bulletId) ?? String(locate(doc.view, bulletId)?.bullet.text ?? "")
    const after = ta.value
    const splice = diffText(before, after, ta.selectionEnd)
    autosize(ta)
    if (!splice) return
    this.#shown.set(bulletId, after)
    doc.change(d => {
      const at = locate(d, bulletId)
      if (!at) return
      A.splice(d, ["sections", at.si, "bullets", at.bi, "text"], splice.index, splice.deleteCount, splice.insert)
    })
  }

  // ---- structure ------------------------------------------------------------------------------

  /** A new bullet as written to the document: `text` becomes Text, the other strings are scalars. */
  #newBullet(): StoredBullet {
    return {
      id: scalar(crypto.randomUUID()),
      text: "",
      proposedBy: [],
      tags: [],
      status: scalar("proposed"),
      createdBy: scalar(this.app.me.id),
      createdAt: Date.now(),
    }
  }

  #addBullet(sectionIndex: number, at: number): void {
    const bullet = this.#newBullet()
    const ok = this.#doc?.change(d => {
      const list = (d as unknown as StoredDoc).sections[sectionIndex]?.bullets
      if (list) list.splice(Math.min(at, list.length), 0, bullet)
    })
    if (ok) {
      this.#focusNext = { bulletId: str(bullet.id), at: "start" }
      this.app.requestRender()
    }
  }

  #addAfter(bulletId: string): void {
    const at = locate(this.#doc?.view, bulletId)
    if (at) this.#addBullet(at.si, at.bi + 1)
  }

  #deleteBullet(bulletId: string, focusNeighbour: boolean): void {
    const ids = order(this.#doc?.view)
    const i = ids.indexOf(bulletId)
    const neighbour = ids[i - 1] ?? ids[i + 1]
    this.#doc?.change(d => {
      const at = locate(d, bulletId)
      if (at) d.sections[at.si]!.bullets.splice(at.bi, 1)
    })
    this.#shown.delete(bulletId)
    if (focusNeighbour && neighbour) this.#focusNext = { bulletId: neighbour, at: "end" }
    this.app.requestRender()
  }

  /** Reorder = delete + insert of a copy with the same id, createdBy and createdAt (schema.md). */
  #move(bulletId: string, delta: -1 | 1): void {
    const here = locate(this.#doc?.view, bulletId)
    if (!here) return
    const target = here.bi + delta
    if (target < 0 || target >= here.section.bullets.length) return
    const ta = document.querySelector<HTMLTextAreaElement>(`textarea[data-bullet="${CSS.escape(bulletId)}"]`)
    this.#doc?.change(d => {
      const at = locate(d, bulletId)
      if (!at) return
      const b = plain<Bullet>(at.bullet)
      const copy: StoredBullet = {
        id: scalar(b.id),
        text: b.text ?? "",
        proposedBy: (b.proposedBy ?? []).map(scalar),
        tags: (b.tags ?? []).map(scalar),
        status: scalar(b.status),
        createdBy: scalar(b.createdBy),
        createdAt: b.createdAt,
      }
      const list = (d as unknown as StoredDoc).sections[at.si]!.bullets
      list.splice(at.bi, 1)
      list.splice(target, 0, copy)
    })
    if (ta && document.activeElement === ta) this.#focusNext = { bulletId, at: ta.selectionStart }
    this.app.requestRender()
  }

  #setStatus(bulletId: string, status: BulletStatus): void {
    this.#doc?.change(d => {
      const at = locate(d, bulletId)
      if (at && str(at.bullet.status) !== status) (at.bullet as unknown as StoredBullet).status = scalar(status)
    })
  }

  #addListEntry(bulletId: string, field: "proposedBy" | "tags", raw: string): void {
    const values = raw
      .split(/[,;]/u)
      .map(v => v.trim())
      .filter(Boolean)
      .map(v => (field === "tags" ? v.toLowerCase().replace(/\s+/gu, "-").slice(0, 64) : v.slice(0, 120)))
    if (values.length === 0) return
    this.#doc?.change(d => {
      const at = locate(d, bulletId)
      if (!at) return
      const list = (at.bullet as unknown as StoredBullet)[field]
      for (const v of values) {
        if (!list.some(x => str(x).toLocaleLowerCase() === v.toLocaleLowerCase())) list.push(scalar(v))
      }
    })
  }

  #removeListEntry(bulletId: string, field: "proposedBy" | "tags", value: string): void {
    this.#doc?.change(d => {
      const at = locate(d, bulletId)
      if (!at) return
      const list = at.bullet[field]
      const i = list.findIndex(x => str(x) === value)
      if (i >= 0) list.splice(i, 1)
    })
  }

  // ---- keyboard -------------------------------------------------------------------------------

  #onKeydown(e: KeyboardEvent, bulletId: string): void {
    const ta = e.target as HTMLTextAreaElement
    if (e.isComposing) return
    const collapsed = ta.selectionStart === ta.selectionEnd
    if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault()
      this.#addAfter(bulletId)
    } else if (e.key === "Backspace" && ta.value === "") {
      e.preventDefault()
      this.#deleteBullet(bulletId, true)
    } else if (e.key === "ArrowUp" && collapsed && ta.selectionStart === 0) {
      const ids = order(this.#doc?.view)
      const prev = ids[ids.indexOf(bulletId) - 1]
      if (prev) {
        e.preventDefault()
        this.#focusBullet(prev, "end")
      }
    } else if (e.key === "ArrowDown" && collapsed && ta.selectionEnd === ta.value.length) {
      const ids = order(this.#doc?.view)
      const next = ids[ids.indexOf(bulletId) + 1]
      if (next) {
        e.preventDefault()
        this.#focusBullet(next, "start")
      }
    }
  }

  #focusBullet(bulletId: string, at: "start" | "end" | number): void {
    const ta = document.querySelector<HTMLTextAreaElement>(`textarea[data-bullet="${CSS.escape(bulletId)}"]`)
    if (!ta) return
    ta.focus()
    const pos = at === "start" ? 0 : at === "end" ? ta.value.length : Math.min(at, ta.value.length)
    ta.setSelectionRange(pos, pos)
  }

  #onFocusIn(e: FocusEvent): void {
    const row = (e.target as Element).closest?.("[data-bullet-row]")
    this.#setMyBullet(row instanceof HTMLElement ? (row.dataset.bulletRow ?? null) : null)
  }

  #onFocusOut(e: FocusEvent): void {
    const next = e.relatedTarget as Element | null
    if (!next?.closest?.("[data-bullet-row]")) this.#setMyBullet(null)
  }

  // ---- submission -----------------------------------------------------------------------------

  async #doSubmit(override: boolean): Promise<void> {
    this.#submit = { kind: "busy" }
    this.app.requestRender()
    try {
      const s = await submitGroup(this.app.meeting.slug, this.n, override)
      this.#submit = { kind: "done", version: s.version, at: s.at }
    } catch (err) {
      this.#submit =
        err instanceof ApiError
          ? { kind: "failed", message: err.message, violations: err.violations }
          : { kind: "failed", message: "The server could not be reached. Try again when you are online.", violations: [] }
    }
    this.app.requestRender()
  }

  // ---- rendering ------------------------------------------------------------------------------

  afterRender(): void {
    this.#syncTextareas(null)
    for (const ta of document.querySelectorAll<HTMLTextAreaElement>("textarea[data-bullet]")) autosize(ta)
    const f = this.#focusNext
    if (f && document.querySelector(`textarea[data-bullet="${CSS.escape(f.bulletId)}"]`)) {
      this.#focusNext = null
      this.#focusBullet(f.bulletId, f.at)
    }
  }

  render(): TemplateResult {
    const m = this.app.meeting
    if (m.error) return html`<section class="page"><p class="note" role="alert">${m.error}</p></section>`
    const live = this.#bind()
    const entry = m.group(this.n)
    if (!live || !entry) return html`<section class="page">${loading(`group ${this.n}`)}</section>`
    if (live.status === "unavailable") {
      return html`<section class="page"><p class="note" role="alert">
        This group's outcome is not available yet on this device. It will load as soon as the connection is back.
      </p></section>`
    }
    const doc = live.view
    if (!doc?.sections) return html`<section class="page">${loading("the outcome")}</section>`
    const editable = this.#editable
    const rules = m.indexDoc?.formatRules ?? DEFAULT_RULES
    const violations = checkOutcome(doc.sections, rules)
    const { byBullet, bySection } = indexViolations(violations)
    const last = entry.submissions?.[entry.submissions.length - 1]
    const mayEditRole = canEditGroup(this.app.me, this.n)
    const group = doc.group ?? { number: this.n, dimension: entry.dimension, moderator: "", rapporteur: "", questions: [] }

    return html`<div class="page group-page ${editable ? "is-editing" : "is-reading"}" data-mode=${editable ? "edit" : "read"}>
      ${live.problem
        ? html`<div class="banner banner-error" role="alert" data-testid="refused">
            <div><strong>Your copy was reset to the server's version.</strong> ${live.problem}</div>
            <button class="btn btn-quiet" type="button" @click=${() => live.dismissProblem()}>Dismiss</button>
          </div>`
        : nothing}
      <div class="group-layout">
        <div class="group-main">
          <div class="page-head">
            <p class="eyebrow"><a href=${homePath(m.slug)}>Meeting</a> › Action group ${group.number}</p>
            <div class="title-row">
              <h1 dir="auto">Action group ${group.number}: ${group.dimension}</h1>
              ${stateBadge(entry.state, last?.version)}
            </div>
            <p class="meta" dir="auto">
              ${group.moderator ? html`Moderator: <span dir="auto">${group.moderator}</span>` : nothing}
              ${group.moderator && group.rapporteur ? " · " : nothing}
              ${group.rapporteur ? html`Rapporteur: <span dir="auto">${group.rapporteur}</span>` : nothing}
            </p>
            ${slotLine(entry, m.timezone)}
            ${entry.state === "locked"
              ? html`<p class="banner banner-info" role="status">Locked after the report-back. ${mayEditRole
                  ? "Editing is off; a co-facilitator can reopen the group."
                  : ""}</p>`
              : !mayEditRole
                ? html`<p class="banner banner-info" role="status">You are following this group live. Only its rapporteur, moderator and the co-facilitators edit it.</p>`
                : nothing}
          </div>

          ${group.questions?.length
            ? html`<section class="card questions" aria-labelledby="q-title">
                <h2 id="q-title">Guiding questions</h2>
                <ol>${group.questions.map(q => html`<li dir="auto">${q}</li>`)}</ol>
              </section>`
            : nothing}

          ${editable ? this.#datalists(doc) : nothing}
          ${doc.sections.map((section, si) => this.#section(section, si, editable, byBullet, bySection.get(section.id) ?? [], rules.maxWordsPerBullet, rules.maxBulletsPerSection))}
        </div>
        <aside class="group-side" aria-label="Status">
          ${this.#presencePanel(doc, entry.docUrl)}
          ${mayEditRole ? this.#submitPanel(live, violations, doc) : this.#submissionsList()}
          ${this.#exportsPanel()}
        </aside>
      </div>
    </div>`
  }

  #datalists(doc: GroupDoc): TemplateResult {
    const names = new Set<string>()
    const tags = new Set<string>(OBJECTIVE_TAGS)
    for (const s of doc.sections) for (const b of s.bullets ?? []) {
      for (const p of b.proposedBy ?? []) names.add(p)
      for (const t of b.tags ?? []) tags.add(t)
    }
    return html`<datalist id="delegations">${[...names].sort().map(n => html`<option value=${n}></option>`)}</datalist>
      <datalist id="tags">${[...tags].map(t => html`<option value=${t}></option>`)}</datalist>`
  }

  #section(
    section: OutcomeSection,
    si: number,
    editable: boolean,
    byBullet: Map<string, Violation[]>,
    sectionViolations: Violation[],
    maxWords: number,
    maxBullets: number,
  ): TemplateResult {
    const bullets = section.bullets ?? []
    const headingId = `sec-${section.id}`
    return html`<section class="card outcome-section" aria-labelledby=${headingId} data-section=${section.id}>
      <div class="section-head">
        <h2 id=${headingId} dir="auto">${si + 1}. ${section.title}</h2>
        <span class="meta small ${bullets.length > maxBullets ? "warn-text" : ""}">${bullets.length} / ${maxBullets} bullets</span>
      </div>
      ${sectionViolations.length
        ? html`<ul class="warnings" role="status">${sectionViolations.map(v => html`<li class="warning" data-rule=${v.rule}>${v.message}</li>`)}</ul>`
        : nothing}
      ${bullets.length === 0
        ? html`<p class="meta empty">No bullets yet.</p>`
        : html`<ol class="bullets" role="list">
            ${repeat(
              bullets,
              b => b.id,
              (b, bi) => (editable
                ? this.#editBullet(b, si, bi, bullets.length, byBullet.get(b.id) ?? [], maxWords)
                : this.#readBullet(b, si, bi)),
            )}
          </ol>`}
      ${editable
        ? html`<button class="btn btn-add" type="button" @click=${() => this.#addBullet(si, bullets.length)}>
            + Add bullet to “${section.title}”
          </button>`
        : nothing}
    </section>`
  }

  #editorsOn(bulletId: string): Peer[] {
    return [...this.#peers.values()].filter(p => p.bulletId === bulletId)
  }

  #peerMarks(bulletId: string): TemplateResult {
    const peers = this.#editorsOn(bulletId)
    if (!peers.length) return html``
    return html`<span class="peer-marks" data-testid="peer-marks">
      ${peers.map(p => html`<span class="peer-mark" style="--c:${personColor(p.person)}" title="${p.name} is editing"
        >${p.name} is editing</span>`)}
    </span>`
  }

  #readBullet(b: Bullet, si: number, bi: number): TemplateResult {
    const number = `${si + 1}.${bi + 1}`
    return html`<li class="bullet bullet-read status-${b.status}" id=${`bullet-${b.id}`} data-bullet-id=${b.id}>
      <span class="bullet-num" aria-hidden="true">${number}</span>
      <div class="bullet-body">
        <p class="bullet-text" dir="auto" data-testid="bullet-text">${String(b.text ?? "")}</p>
        <div class="bullet-meta">
          ${b.status !== "proposed" ? html`<span class="status status-${b.status}">${b.status}</span>` : nothing}
          ${b.proposedBy?.length ? html`<span class="meta small">Proposed by <span dir="auto">${b.proposedBy.join(", ")}</span></span>` : nothing}
          ${(b.tags ?? []).map(t => html`<span class="tag">${t}</span>`)}
          ${this.#peerMarks(b.id)} ${this.#wentInto(b.id)}
        </div>
      </div>
    </li>`
  }

  /** "Where did it go": a link to the summary item that cites this bullet, if any. */
  #wentInto(bulletId: string): TemplateResult | typeof nothing {
    const at = this.app.meeting.itemCiting(this.n, bulletId)
    if (!at) return nothing
    return html`<a class="small went-into" data-testid="went-into" href=${`${summaryPath(this.app.meeting.slug)}#item-${at.itemId}`}
      >In the chair's summary</a
    >`
  }

  #chips(b: Bullet, field: "proposedBy" | "tags", label: string, list: string): TemplateResult {
    const key = `${b.id}:${field}`
    const inputId = `in-${field}-${b.id}`
    const commit = (input: HTMLInputElement) => {
      if (input.value.trim()) this.#addListEntry(b.id, field, input.value)
      input.value = ""
      this.#drafts.delete(key)
    }
    return html`<div class="chips" role="group" aria-label=${label}>
      <label class="chips-label" for=${inputId}>${label}</label>
      ${(b[field] ?? []).map(
        v => html`<span class=${field === "tags" ? "tag" : "chip"} dir="auto">${v}<button type="button" class="chip-x"
          aria-label=${`Remove ${v}`} @click=${() => this.#removeListEntry(b.id, field, v)}>×</button></span>`,
      )}
      <input id=${inputId} class="chip-input" list=${list} autocomplete="off" dir="auto"
        placeholder=${field === "tags" ? "add tag" : "add delegation"}
        data-field=${field}
        @input=${(e: Event) => this.#drafts.set(key, (e.target as HTMLInputElement).value)}
        @keydown=${(e: KeyboardEvent) => {
          if ((e.key === "Enter" || e.key === ",") && !e.isComposing) {
            e.preventDefault()
            commit(e.target as HTMLInputElement)
          }
        }}
        @change=${(e: Event) => commit(e.target as HTMLInputElement)} />
    </div>`
  }

  #editBullet(b: Bullet, si: number, bi: number, count: number, problems: Violation[], maxWords: number): TemplateResult {
    const number = `${si + 1}.${bi + 1}`
    const words = wordCount(String(b.text ?? ""))
    const textId = `text-${b.id}`
    const peers = this.#editorsOn(b.id)
    const style = peers[0] ? `--peer:${personColor(peers[0].person)}` : ""
    return html`<li class="bullet bullet-edit ${problems.length ? "has-problems" : ""} ${peers.length ? "has-peer" : ""} status-${b.status}"
      data-bullet-row=${b.id} data-bullet-id=${b.id} style=${style}
      @focusin=${(e: FocusEvent) => this.#onFocusIn(e)} @focusout=${(e: FocusEvent) => this.#onFocusOut(e)}>
      <span class="bullet-num" aria-hidden="true">${number}</span>
      <div class="bullet-body">
        <label class="visually-hidden" for=${textId}>Bullet ${number}</label>
        <textarea id=${textId} class="bullet-input" rows="2" dir="auto" data-bullet=${b.id}
          aria-describedby=${`check-${b.id}`}
          placeholder="One proposal, in one paragraph"
          @input=${(e: Event) => this.#onInput(e, b.id)}
          @keydown=${(e: KeyboardEvent) => this.#onKeydown(e, b.id)}></textarea>
        ${this.#peerMarks(b.id)} ${this.#wentInto(b.id)}
        <div class="bullet-tools">
          ${this.#chips(b, "proposedBy", "Proposed by", "delegations")}
          ${this.#chips(b, "tags", "Tags", "tags")}
          <label class="status-select">Status
            <select @change=${(e: Event) => this.#setStatus(b.id, (e.target as HTMLSelectElement).value as BulletStatus)}>
              ${BULLET_STATUSES.map(s => html`<option value=${s} ?selected=${b.status === s}>${s}</option>`)}
            </select>
          </label>
        </div>
      </div>
      <div class="bullet-check">
        <div class="checks-live" id=${`check-${b.id}`} aria-live="polite">
          ${words > maxWords
            ? nothing
            : html`<span class="wordcount" data-testid="wordcount">${words} / ${maxWords} words</span>`}
          ${problems.map(v => html`<span class="warning" data-rule=${v.rule}>${v.message}</span>`)}
        </div>
        <span class="row-actions">
          <button type="button" class="icon-btn" aria-label=${`Move bullet ${number} up`} title="Move up"
            ?disabled=${bi === 0} @click=${() => this.#move(b.id, -1)}>↑</button>
          <button type="button" class="icon-btn" aria-label=${`Move bullet ${number} down`} title="Move down"
            ?disabled=${bi === count - 1} @click=${() => this.#move(b.id, 1)}>↓</button>
          <button type="button" class="icon-btn danger" aria-label=${`Delete bullet ${number}`} title="Delete"
            @click=${() => this.#deleteBullet(b.id, false)}>✕</button>
        </span>
      </div>
    </li>`
  }

  #presencePanel(doc: GroupDoc, docUrl: string): TemplateResult {
    const peers = [...this.#peers.values()]
    const where = (p: Peer) => {
      if (!p.bulletId) return "in the document"
      const at = locate(doc, p.bulletId)
      return at ? `editing bullet ${at.si + 1}.${at.bi + 1}` : "in the document"
    }
    const me = this.app.me
    return html`<section class="card side-card" aria-labelledby="presence-title" data-testid="presence">
      <h2 id="presence-title">Who is here</h2>
      ${counts(this.app.meeting.countsOf(docUrl))}
      <ul class="people">
        ${canEditGroup(me, this.n)
          ? html`<li><span class="avatar" style="--c:${personColor(me.id)}" aria-hidden="true">${initials(me.name)}</span>
              <span><span dir="auto">${me.name}</span> (you)<br /><span class="meta small">${roleName(me.role)}</span></span></li>`
          : nothing}
        ${peers.map(
          p => html`<li data-person=${p.person}><span class="avatar" style="--c:${personColor(p.person)}" aria-hidden="true">${initials(p.name)}</span>
            <span><span dir="auto">${p.name}</span><br /><span class="meta small">${roleName(p.role)} · ${where(p)}</span></span></li>`,
        )}
      </ul>
    </section>`
  }

  #saveState(live: LiveDoc<GroupDoc>): TemplateResult {
    const state = this.app.live.state
    if (live.unacknowledged === 0) {
      return html`<p class="save-state saved" data-save="saved">All changes saved to the server</p>`
    }
    return state === "online"
      ? html`<p class="save-state saving" data-save="saving">Saving…</p>`
      : html`<p class="save-state pending" data-save="local">Saved on this device; will sync when back online</p>`
  }

  #submitPanel(live: LiveDoc<GroupDoc>, violations: Violation[], doc: GroupDoc): TemplateResult {
    const m = this.app.meeting
    const entry = m.group(this.n)!
    const last = entry.submissions?.[entry.submissions.length - 1]
    const cofac = isCoFacilitator(this.app.me)
    const edited = last ? !sortedEqual(live.heads(), last.heads ?? []) : false
    const locked = entry.state === "locked"
    const online = this.app.live.state === "online"
    const busy = this.#submit.kind === "busy"
    const saved = live.unacknowledged === 0
    const failing = violations.length > 0
    const upToDate = last && !edited && entry.state === "submitted"
    const canSubmit = !locked && online && saved && !busy && !failing && !upToDate
    const canOverride = cofac && !locked && online && saved && !busy && failing
    const sectionTitle = (id: string) => doc.sections.find(s => s.id === id)?.title ?? id
    const bulletLabel = (id: string | null) => {
      if (!id) return ""
      const at = locate(doc, id)
      return at ? `Bullet ${at.si + 1}.${at.bi + 1}: ` : ""
    }
    const s = this.#submit
    return html`<section class="card side-card submit-card" aria-labelledby="submit-title" data-testid="submit-panel">
      <h2 id="submit-title">Submission</h2>
      ${this.#saveState(live)}
      ${last
        ? html`<p class="meta" data-testid="submission-info">Last submitted: v${last.version} · ${formatInstant(last.at, m.timezone)}
            by <span dir="auto">${last.by}</span>${last.override ? " (override)" : ""}</p>
            ${edited ? html`<p class="notice" data-testid="edited-since">Edited since submission v${last.version}</p>` : nothing}`
        : html`<p class="meta">Not submitted yet.</p>`}
      <h3 class="checks-title">Format checks</h3>
      ${failing
        ? html`<ul class="checks" data-testid="checks">
            ${violations.map(
              v => html`<li class="warning" data-rule=${v.rule}>
                ${v.bulletId
                  ? html`<button type="button" class="link" @click=${() => this.#focusBullet(v.bulletId!, "end")}>${bulletLabel(v.bulletId)}${v.message}</button>`
                  : html`${sectionTitle(v.sectionId)}: ${v.message}`}
              </li>`,
            )}
          </ul>`
        : html`<p class="ok" data-testid="checks-ok">All format rules pass.</p>`}
      <div class="submit-actions">
        <button class="btn btn-primary" type="button" data-testid="submit" ?disabled=${!canSubmit}
          @click=${() => void this.#doSubmit(false)}>${last ? "Resubmit outcome" : "Submit outcome"}</button>
        ${cofac && failing
          ? html`<button class="btn btn-warn" type="button" data-testid="override" ?disabled=${!canOverride}
              @click=${() => void this.#doSubmit(true)}>Submit with override</button>`
          : nothing}
      </div>
      <p class="meta small" aria-live="polite">
        ${locked
          ? "The group is locked."
          : failing
            ? cofac
              ? "Format rules fail: co-facilitators may submit with an override."
              : "Fix the format warnings to submit."
            : !online
              ? "Submitting needs a connection."
              : !saved
                ? "Waiting for your edits to reach the server."
                : upToDate
                  ? "No changes since the last submission."
                  : ""}
      </p>
      ${s.kind === "done"
        ? html`<p class="ok" role="status" data-testid="submit-result">Submitted as version ${s.version} at ${formatInstant(s.at, m.timezone)}.</p>`
        : s.kind === "failed"
          ? html`<div class="banner banner-error" role="alert" data-testid="submit-error">
              <p>${s.message}</p>
              ${s.violations.length ? html`<ul>${s.violations.map(v => html`<li>${v.message}</li>`)}</ul>` : nothing}
            </div>`
          : nothing}
      ${this.#submissionsList()}
    </section>`
  }

  /** Downloads of this outcome: the working draft and each submitted version. */
  #exportsPanel(): TemplateResult {
    const slug = this.app.meeting.slug
    const versions = (this.app.meeting.group(this.n)?.submissions ?? []).map(s => s.version)
    const link = (format: string, label: string, version?: number) =>
      format === "html"
        ? html`<a href=${groupExportUrl(slug, this.n, format) + (version ? `&version=v${version}` : "")} target="_blank"
            rel="noopener">${label}</a>`
        : html`<a href=${groupExportUrl(slug, this.n, format) + (version ? `&version=v${version}` : "")} download>${label}</a>`
    return html`<section class="card side-card" aria-labelledby="export-title" data-testid="group-exports">
      <h2 id="export-title">Download</h2>
      <p class="small">Working draft: ${link("docx", "DOCX")} · ${link("md", "Markdown")} · ${link("html", "HTML")} ·
        ${link("json", "JSON")}</p>
      ${versions.map(v => html`<p class="small">Version ${v}: ${link("html", "view", v)} · ${link("docx", "DOCX", v)} · ${link("json", "JSON", v)}</p>`)}
    </section>`
  }

  #submissionsList(): TemplateResult {
    const m = this.app.meeting
    const subs = m.group(this.n)?.submissions ?? []
    if (!subs.length) return html``
    return html`<div class="history">
      <h3 class="checks-title">Submissions</h3>
      <ol class="history-list" reversed>
        ${[...subs].reverse().map(
          s => html`<li>v${s.version} · ${formatInstant(s.at, m.timezone)} · <span dir="auto">${s.by}</span>${s.override ? " · override" : ""}</li>`,
        )}
      </ol>
    </div>`
  }
}

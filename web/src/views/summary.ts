// The chair's summary page (/m/{slug}/summary). Everyone follows the live summary document;
// co-facilitators edit it together (preamble, items, order, thematic sections), merge the groups'
// submissions, decide on stale items, consolidate proposed clusters, approve, start new revisions
// and compare versions (each change named by its author's name and role). Merges, decisions,
// clusters and sign-off are server edits through the REST API (one attributed change each); text,
// order, sections and new items are direct edits of the document over sync.
import * as A from "@automerge/automerge"
import { html, nothing, type TemplateResult } from "lit-html"
import {
  ApiError,
  approveSummary,
  dismissCluster,
  fetchClusters,
  fetchSignoff,
  groupDiff,
  groupExportUrl,
  mergeCluster,
  mergeSummary,
  newRevision,
  resolveItem,
  summaryDiff,
  summaryExportUrl,
  updateUnedited,
  type DiffAnswer,
} from "../api"
import type { App, View } from "../app"
import { authorLabel } from "../labels"
import type { LiveDoc } from "../live"
import { scalar } from "../plain"
import { groupPath } from "../router"
import { applySplices, diffText, splicesFromPatches, transformSelection, type Splice, type TextPatch } from "../textdiff"
import type { Cluster, Signoff, SummaryDoc, SummaryItem, SummarySection } from "../types"
import { loading } from "./common"

const EXPORTS: [string, string][] = [
  ["docx", "Word (DOCX)"],
  ["md", "Markdown"],
  ["html", "Printable HTML"],
  ["json", "JSON with provenance"],
]

export class SummaryView implements View {
  #signoff: Signoff | null = null
  #clusters: Cluster[] = []
  #message: { kind: "info" | "error"; text: string } | null = null
  #busy = false
  #refreshTimer = 0
  #open = new Set<string>()
  #diff: ({ title: string } & DiffAnswer) | null = null
  #unsubscribe: (() => void) | null = null
  /**
   * What each textarea shows, by item id (or "preamble"). Textareas are not bound to the render:
   * remote changes are written into them at once, through their patches, keeping the caret where
   * the person left it (as in the group editor); an input event diffs against what is shown.
   */
  #shown = new Map<string, string>()

  constructor(private readonly app: App) {
    this.#refresh()
  }

  get #doc(): LiveDoc<SummaryDoc> | null {
    const doc = this.app.meeting.summaryDoc()
    if (doc && !this.#unsubscribe) {
      // Sign-off status and clusters are computed by the server from the document: ask again
      // shortly after it changes.
      this.#unsubscribe = doc.changed.on(info => {
        if (!info.local) this.#syncTextareas(info.patches)
        this.#scheduleRefresh()
      })
    }
    return doc
  }

  get #cofac(): boolean {
    return this.app.me.role === "co-facilitator"
  }

  get #editable(): boolean {
    return this.#cofac && this.#doc?.view?.state !== "issued"
  }

  afterRender(): void {
    this.#syncTextareas(null)
  }

  /** Where the text of `key` is in the document now. */
  #pathOf(doc: SummaryDoc, key: string): { path: (string | number)[]; text: string } | null {
    if (key === "preamble") return { path: ["preamble"], text: String(doc.preamble ?? "") }
    for (const [si, s] of (doc.sections ?? []).entries()) {
      const ii = (s.items ?? []).findIndex(i => i.id === key)
      if (ii >= 0) return { path: ["sections", si, "items", ii, "text"], text: String(s.items[ii]?.text ?? "") }
    }
    return null
  }

  /** Writes the document's text into every textarea that shows something else. */
  #syncTextareas(patches: TextPatch[] | null): void {
    const doc = this.#doc?.view
    if (!doc) return
    for (const ta of document.querySelectorAll<HTMLTextAreaElement>("textarea[data-text]")) {
      const key = ta.dataset.text!
      const at = this.#pathOf(doc, key)
      if (!at) continue
      const current = ta.value
      if (current === at.text) {
        this.#shown.set(key, at.text)
        continue
      }
      let splices: Splice[] | null = patches ? splicesFromPatches(patches, at.path) : null
      if (!splices || applySplices(current, splices) !== at.text) {
        const d = diffText(current, at.text)
        splices = d ? [d] : []
      }
      const focused = document.activeElement === ta
      const sel = { start: ta.selectionStart, end: ta.selectionEnd, direction: ta.selectionDirection }
      ta.value = at.text
      this.#shown.set(key, at.text)
      if (focused) {
        const s = transformSelection(sel, splices)
        ta.setSelectionRange(s.start, s.end, s.direction)
      }
    }
  }

  dispose(): void {
    this.#unsubscribe?.()
    clearTimeout(this.#refreshTimer)
  }

  #scheduleRefresh(): void {
    clearTimeout(this.#refreshTimer)
    this.#refreshTimer = window.setTimeout(() => this.#refresh(), 400)
  }

  #refresh(): void {
    const slug = this.app.meeting.slug
    void fetchSignoff(slug)
      .then(s => {
        this.#signoff = s
        this.app.requestRender()
      })
      .catch(() => {})
    void fetchClusters(slug)
      .then(c => {
        this.#clusters = c
        this.app.requestRender()
      })
      .catch(() => {})
  }

  async #act(what: () => Promise<string | null>): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    this.app.requestRender()
    try {
      const text = await what()
      this.#message = text ? { kind: "info", text } : null
    } catch (err) {
      this.#message = { kind: "error", text: err instanceof ApiError || err instanceof Error ? err.message : String(err) }
    } finally {
      this.#busy = false
      this.#refresh()
      this.app.requestRender()
    }
  }

  render(): TemplateResult {
    const live_ = this.#doc
    const doc = live_?.view
    if (!live_ || !doc) return html`<section class="page">${loading("the chair's summary")}</section>`
    const issued = doc.state === "issued"
    let n = 0
    const number = () => ++n
    return html`<section class="page wide summary-page" aria-labelledby="summary-title">
      <div class="page-head">
        <p class="eyebrow">Chair's summary · revision ${doc.revision ?? 1}</p>
        <div class="title-row">
          ${this.#editable
            ? html`<h1 id="summary-title" class="visually-hidden">${doc.title}</h1>
                <input class="summary-title-input" aria-label="Title" .value=${doc.title ?? ""}
                @change=${(e: Event) => this.#setTitle((e.target as HTMLInputElement).value)} />`
            : html`<h1 id="summary-title" dir="auto">${doc.title}</h1>`}
          <span class="badge badge-${issued ? "locked" : "drafting"}" data-summary-state=${doc.state}
            >${issued ? "Issued" : "Drafting"}</span
          >
        </div>
        ${issued
          ? html`<p class="notice">This revision is issued and locked. ${this.#cofac ? "Start a new revision to change it." : ""}</p>`
          : nothing}
      </div>
      ${this.#message
        ? html`<div class="banner banner-${this.#message.kind}" role="status" data-testid="summary-message">
            ${this.#message.text}
          </div>`
        : nothing}
      <div class="summary-layout">
        <div class="summary-main">
          <h2 class="section-title">Preamble</h2>
          ${this.#editable
            ? html`<textarea class="summary-preamble" aria-label="Preamble" rows="3" dir="auto" data-text="preamble"
                @input=${(e: Event) => this.#editText(e, "preamble")}></textarea>`
            : html`<p class="summary-para" dir="auto">${String(doc.preamble ?? "")}</p>`}
          ${(doc.sections ?? []).map((s, si) => this.#section(doc, si, s.title, s.items ?? [], number))}
          ${this.#editable ? this.#addSectionForm() : nothing}
        </div>
        <aside class="summary-side">
          ${this.#signoffCard(issued)} ${this.#cofac && !issued ? this.#mergeCard() : nothing}
          ${this.#cofac && !issued ? this.#clustersCard() : nothing} ${this.#exportsCard()} ${this.#historyCard(doc)}
        </aside>
      </div>
    </section>`
  }

  #section(
    doc: SummaryDoc,
    si: number,
    title: string,
    items: SummaryItem[],
    number: () => number,
  ): TemplateResult {
    const sections = doc.sections ?? []
    const id = sections[si]?.id ?? ""
    return html`<section class="outcome-section summary-section" data-section=${id} aria-label=${title}>
      ${this.#editable
        ? html`<div class="section-head">
            <input class="section-title-input" aria-label="Section title" dir="auto" .value=${title}
              @change=${(e: Event) => this.#renameSection(si, id, (e.target as HTMLInputElement).value)} />
            ${items.length === 0
              ? html`<button class="btn btn-quiet" type="button" @click=${() => this.#removeSection(si, id)}>
                  Remove section
                </button>`
              : nothing}
          </div>`
        : html`<h2 class="section-title" dir="auto">${title}</h2>`}
      ${items.length === 0 ? html`<p class="empty">No items yet.</p>` : nothing}
      <ol class="bullets summary-items" role="list">
        ${items.map((item, ii) => this.#item(sections, si, ii, item, number(), items.length))}
      </ol>
      ${this.#editable
        ? html`<button class="btn btn-add" type="button" @click=${() => this.#addItem(si)}>Add an item</button>`
        : nothing}
    </section>`
  }

  #addSectionForm(): TemplateResult {
    const add = (form: HTMLFormElement) => {
      const input = form.elements.namedItem("title") as HTMLInputElement
      const title = input.value.trim()
      if (!title) return
      this.#addSection(title)
      input.value = ""
    }
    return html`<form class="add-section" data-testid="add-section"
      @submit=${(e: Event) => {
        e.preventDefault()
        add(e.target as HTMLFormElement)
      }}>
      <input name="title" aria-label="New section title" placeholder="A thematic section, e.g. Remittances" maxlength="500" />
      <button class="btn" type="submit">Add a section</button>
    </form>`
  }

  #item(
    sections: SummarySection[],
    si: number,
    ii: number,
    item: SummaryItem,
    n: number,
    count: number,
  ): TemplateResult {
    const stale = item.stale ?? []
    const removed = item.removedAtSource ?? []
    const edited = item.mergedText !== undefined && String(item.text) !== String(item.mergedText)
    const open = this.#open.has(item.id)
    const slug = this.app.meeting.slug
    return html`<li class="bullet summary-item ${stale.length || removed.length ? "has-problems" : ""}" id=${`item-${item.id}`}
      data-item-id=${item.id}>
      <span class="bullet-num" aria-hidden="true">${n}</span>
      <div class="bullet-body">
        ${this.#editable
          ? html`<textarea class="bullet-input" rows="2" dir="auto" aria-label=${`Paragraph ${n}`} data-item=${item.id}
              data-text=${item.id} @input=${(e: Event) => this.#editText(e, item.id)}></textarea>`
          : html`<p class="bullet-text summary-para" dir="auto">${String(item.text ?? "")}</p>`}
        ${stale.map(
          st => html`<div class="stale" data-testid="stale" role="group" aria-label="Source changed">
            <p class="warn-text small">
              Group ${st.group} changed this bullet in version ${st.version}.${edited
                ? " This item was edited since the merge: decide which text to keep."
                : " Nobody edited this item since the merge."}
            </p>
            <div class="stale-grid">
              <div><span class="small meta">Before</span><p class="old" dir="auto">${st.oldText}</p></div>
              <div><span class="small meta">Now</span><p class="new" dir="auto">${st.newText}</p></div>
            </div>
          </div>`,
        )}
        ${removed.map(
          r => html`<p class="warn-text small" data-testid="removed-at-source">
            Group ${r.group} removed the source bullet in version ${r.version}. The item stays until a co-facilitator
            decides.
          </p>`,
        )}
        ${this.#editable && (stale.length || removed.length)
          ? html`<div class="row-actions">
              ${stale.length
                ? html`<button class="btn btn-primary" type="button" ?disabled=${this.#busy}
                    @click=${() => this.#act(async () => (await resolveItem(slug, item.id, "take-source"), "Took the source's text."))}>
                    Take source
                  </button>`
                : nothing}
              <button class="btn" type="button" ?disabled=${this.#busy}
                @click=${() => this.#act(async () => (await resolveItem(slug, item.id, "keep-mine"), "Kept the summary's text."))}>
                Keep mine
              </button>
            </div>`
          : nothing}
        <div class="bullet-meta">
          <button class="link" type="button" aria-expanded=${open ? "true" : "false"} data-testid="provenance"
            @click=${() => this.#toggle(item.id)}>
            ${item.sources?.length ? `Sources (${item.sources.length})` : "Drafted here"}
          </button>
          ${this.#editable
            ? html`<span class="item-tools">
                <button class="icon-btn" type="button" title="Move up" aria-label="Move up" ?disabled=${ii === 0}
                  @click=${() => this.#move(si, ii, -1)}>↑</button>
                <button class="icon-btn" type="button" title="Move down" aria-label="Move down" ?disabled=${ii === count - 1}
                  @click=${() => this.#move(si, ii, 1)}>↓</button>
                ${sections.length > 1
                  ? html`<select class="move-to" aria-label="Move to section"
                      @change=${(e: Event) => {
                        const select = e.target as HTMLSelectElement
                        const to = select.value
                        select.value = ""
                        if (to !== "") this.#moveTo(si, ii, Number(to))
                      }}>
                      <option value="" selected>Move to…</option>
                      ${sections.map((s, sj) =>
                        sj === si ? nothing : html`<option value=${String(sj)}>${s.title}</option>`,
                      )}
                    </select>`
                  : nothing}
                <button class="icon-btn danger" type="button" title="Delete item" aria-label="Delete item"
                  @click=${() => this.#delete(si, ii)}>✕</button>
              </span>`
            : nothing}
        </div>
        ${open
          ? html`<ul class="provenance small" data-testid="sources">
              ${(item.sources ?? []).map(
                src => html`<li>
                  <a href=${`${groupPath(slug, src.group)}#bullet-${src.bulletId}`}>Group ${src.group}</a>, submission
                  v${src.version}: <span dir="auto">“${src.text ?? ""}”</span>
                </li>`,
              )}
              ${(item.consolidatedFrom ?? []).map(
                c => html`<li class="meta">Consolidated from: <span dir="auto">“${c.text}”</span></li>`,
              )}
            </ul>`
          : nothing}
      </div>
    </li>`
  }

  #signoffCard(issued: boolean): TemplateResult {
    const s = this.#signoff
    const slug = this.app.meeting.slug
    const mine = s?.approvedBy.some(a => a.person === this.app.me.id)
    return html`<section class="card side-card" aria-labelledby="signoff-title" data-testid="signoff">
      <h2 id="signoff-title">Sign-off</h2>
      ${s
        ? html`<p class="small">
              Approved by: ${s.approvedBy.length ? s.approvedBy.map(a => a.name).join(", ") : "nobody yet"}
            </p>
            ${s.waitingFor.length && !issued
              ? html`<p class="small meta">Waiting for: ${s.waitingFor.map(a => a.name).join(", ")}</p>`
              : nothing}`
        : nothing}
      <p class="small meta">Issued when every co-facilitator approves the same text; any later edit needs their approval again.</p>
      ${this.#cofac && !issued
        ? html`<button class="btn btn-primary" type="button" ?disabled=${this.#busy || mine}
            @click=${() =>
              this.#act(async () => {
                const r = await approveSummary(slug)
                return r.state === "issued" ? "Approved: the summary is issued." : "Approved."
              })}>
            ${mine ? "Approved" : "Approve"}
          </button>`
        : nothing}
      ${this.#cofac && issued
        ? html`<button class="btn" type="button" ?disabled=${this.#busy}
            @click=${() => this.#act(async () => `Revision ${(await newRevision(slug)).revision} started.`)}>
            Start a new revision
          </button>`
        : nothing}
    </section>`
  }

  #mergeCard(): TemplateResult {
    const slug = this.app.meeting.slug
    return html`<section class="card side-card" aria-labelledby="merge-title">
      <h2 id="merge-title">Merge</h2>
      <p class="small meta">Brings in the latest submission of every group. Nothing is merged twice; changed and removed
        source bullets are flagged on their items.</p>
      <div class="row-actions">
        <button class="btn btn-primary" type="button" ?disabled=${this.#busy}
          @click=${() =>
            this.#act(async () => {
              const r = await mergeSummary(slug)
              return `Merged: ${r.added} new, ${r.stale} changed at the source, ${r.removedAtSource} removed at the source.`
            })}>
          Merge submissions
        </button>
        <button class="btn" type="button" ?disabled=${this.#busy}
          @click=${() => this.#act(async () => `Updated ${(await updateUnedited(slug)).updated} unedited items.`)}>
          Update unedited items
        </button>
      </div>
    </section>`
  }

  #clustersCard(): TemplateResult {
    const slug = this.app.meeting.slug
    return html`<section class="card side-card" aria-labelledby="clusters-title" data-testid="clusters">
      <h2 id="clusters-title">Similar items</h2>
      ${this.#clusters.length === 0 ? html`<p class="small meta">No similar items across groups.</p>` : nothing}
      ${this.#clusters.map(
        c => html`<div class="cluster" data-cluster=${c.id}>
          <p class="small meta">Similarity ${Math.round(c.score * 100)}%</p>
          <ul class="small">
            ${c.items.map(m => html`<li>Group ${m.groups.join(", ")}: <span dir="auto">${m.text}</span></li>`)}
          </ul>
          <div class="row-actions">
            <button class="btn btn-primary" type="button" ?disabled=${this.#busy}
              @click=${() => this.#act(async () => (await mergeCluster(slug, c.id), "Merged into one item citing every source."))}>
              Merge into one item
            </button>
            <button class="btn" type="button" ?disabled=${this.#busy}
              @click=${() => this.#act(async () => (await dismissCluster(slug, c.id), "Kept apart."))}>
              Keep apart
            </button>
          </div>
        </div>`,
      )}
    </section>`
  }

  #exportsCard(): TemplateResult {
    const slug = this.app.meeting.slug
    return html`<section class="card side-card" aria-labelledby="exports-title">
      <h2 id="exports-title">Download</h2>
      <ul class="exports">
        ${EXPORTS.map(
          ([f, label]) =>
            f === "html"
              ? html`<li><a href=${summaryExportUrl(slug, f)} target="_blank" rel="noopener" data-export=${f}>${label}</a></li>`
              : html`<li><a href=${summaryExportUrl(slug, f)} download data-export=${f}>${label}</a></li>`,
        )}
      </ul>
      <p class="small meta">Group outcomes:
        ${this.app.meeting.groups.map(
          g => html`<a href=${groupExportUrl(slug, g.number, "docx")} download title=${g.dimension}>${g.number}</a> `,
        )}
      </p>
    </section>`
  }

  #historyCard(doc: SummaryDoc): TemplateResult {
    const slug = this.app.meeting.slug
    const d = this.#diff
    const name = (id: string) => authorLabel(id, d?.people ?? {})
    const by = (ids: string[]) =>
      ids.length ? html` <span class="meta" data-testid="diff-by">— ${ids.map(name).join(", ")}</span>` : nothing
    return html`<section class="card side-card" aria-labelledby="history-title">
      <h2 id="history-title">Versions</h2>
      <div class="row-actions">
        ${(doc.revisions ?? []).map(
          r => html`<button class="btn btn-quiet" type="button"
            @click=${() =>
              this.#act(async () => {
                this.#diff = { title: `Summary since revision ${r.revision}`, ...(await summaryDiff(slug, `r${r.revision}`)) }
                return null
              })}>
            Since revision ${r.revision}
          </button>`,
        )}
        ${this.app.meeting.groups
          .filter(g => (g.submissions ?? []).length > 0)
          .map(
            g => html`<button class="btn btn-quiet" type="button"
              @click=${() =>
                this.#act(async () => {
                  this.#diff = { title: `Group ${g.number} since its report-back (v1)`, ...(await groupDiff(slug, g.number, "v1")) }
                  return null
                })}>
              Group ${g.number} since v1
            </button>`,
          )}
      </div>
      ${(doc.revisions ?? []).map(
        r => html`<p class="small">Revision ${r.revision} as issued:
          <a href=${`${summaryExportUrl(slug, "html")}&version=r${r.revision}`} target="_blank" rel="noopener">view</a> ·
          <a href=${`${summaryExportUrl(slug, "docx")}&version=r${r.revision}`} download>DOCX</a></p>`,
      )}
      ${d
        ? html`<div class="diff" data-testid="diff">
            <h3 class="small">${d.title}</h3>
            <ul class="small">
              ${d.diff.added.map(a => html`<li class="ok">Added: ${a.text}${by(a.by)}</li>`)}
              ${d.diff.removed.map(a => html`<li class="danger">Removed: ${a.text}${by(a.by)}</li>`)}
              ${d.diff.changed.map(
                c => html`<li>Changed: <del>${c.oldText}</del> → <ins>${c.newText}</ins>${by(c.by)}</li>`,
              )}
              ${d.diff.added.length + d.diff.removed.length + d.diff.changed.length === 0 ? html`<li>No changes.</li>` : nothing}
            </ul>
          </div>`
        : nothing}
    </section>`
  }

  #toggle(id: string): void {
    if (this.#open.has(id)) this.#open.delete(id)
    else this.#open.add(id)
    this.app.requestRender()
  }

  // ---- direct edits over sync ---------------------------------------------------------------------

  #editText(e: Event, key: string): void {
    const ta = e.target as HTMLTextAreaElement
    const view = this.#doc?.view
    const at = view ? this.#pathOf(view, key) : null
    if (!at) return
    const splice = diffText(this.#shown.get(key) ?? at.text, ta.value, ta.selectionEnd)
    this.#shown.set(key, ta.value)
    const path = at.path
    if (!splice) return
    this.#doc?.change(d => {
      A.splice(d, path, splice.index, splice.deleteCount, splice.insert)
    })
  }

  #setTitle(value: string): void {
    const title = value.trim()
    if (!title) return
    this.#doc?.change(d => {
      ;(d as unknown as { title: unknown }).title = scalar(title)
    })
  }

  #addItem(si: number): void {
    this.#doc?.change(d => {
      const items = d.sections[si]?.items
      if (!items) return
      items.push({ id: scalar(crypto.randomUUID()), text: "", sources: [] } as unknown as SummaryItem)
    })
  }

  #delete(si: number, ii: number): void {
    if (!confirm("Delete this item from the summary? Its source bullets stay in the groups' outcomes.")) return
    this.#doc?.change(d => {
      d.sections[si]?.items.splice(ii, 1)
    })
  }

  /** Moves an item: delete plus insert of a copy (Automerge lists have no move). */
  #move(si: number, ii: number, by: number): void {
    const item = this.#doc?.view?.sections[si]?.items[ii]
    if (!item) return
    const stored = copyOf(item)
    this.#doc?.change(d => {
      const items = d.sections[si]?.items
      if (!items || items[ii]?.id?.toString() !== item.id) return
      items.splice(ii, 1)
      items.splice(ii + by, 0, stored)
    })
  }

  /** Moves an item to the end of another section, with its text, sources and flags. */
  #moveTo(si: number, ii: number, to: number): void {
    const view = this.#doc?.view
    const item = view?.sections[si]?.items[ii]
    const target = view?.sections[to]?.id
    if (!item || !target) return
    const stored = copyOf(item)
    this.#doc?.change(d => {
      const from = d.sections[si]?.items
      const dest = d.sections[to]
      if (!from || !dest || from[ii]?.id?.toString() !== item.id || dest.id?.toString() !== target) return
      from.splice(ii, 1)
      dest.items.push(stored)
    })
  }

  #addSection(title: string): void {
    const section = { id: scalar(`theme-${crypto.randomUUID()}`), title: scalar(title), items: [] }
    this.#doc?.change(d => {
      d.sections.push(section as unknown as SummarySection)
    })
  }

  #renameSection(si: number, id: string, value: string): void {
    const title = value.trim()
    if (!title) return
    this.#doc?.change(d => {
      const s = d.sections[si]
      if (!s || s.id?.toString() !== id || String(s.title) === title) return
      ;(s as unknown as { title: unknown }).title = scalar(title)
    })
  }

  /** Removes a section that holds no items (the server refuses removing one that does). */
  #removeSection(si: number, id: string): void {
    this.#doc?.change(d => {
      const s = d.sections[si]
      if (!s || s.id?.toString() !== id || s.items.length > 0) return
      d.sections.splice(si, 1)
    })
  }
}

/** A copy of an item to insert elsewhere: its text as collaborative text, the rest as data. */
function copyOf(item: SummaryItem): SummaryItem {
  const stored: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(item)) stored[k] = k === "text" ? String(v) : toScalars(v)
  return stored as unknown as SummaryItem
}

/** Strings inside a copied value become scalar strings (the schema's `string`). */
function toScalars(v: unknown): unknown {
  if (typeof v === "string") return scalar(v)
  if (Array.isArray(v)) return v.map(toScalars)
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = toScalars(x)
    return out
  }
  return v
}

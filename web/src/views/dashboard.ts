// Co-facilitator dashboard: the six groups side by side with their live drafts, format status and
// submissions; lock and reopen; invite links per role (create, copy, revoke).
import { html, nothing, type TemplateResult } from "lit-html"
import { ApiError, createInvite, listInvites, lockGroup, reopenGroup, revokeInvite } from "../api"
import type { App, View } from "../app"
import { checkOutcome } from "../format"
import { groupPath, summaryPath } from "../router"
import { formatInstant } from "../time"
import { DEFAULT_RULES, ROLES, isCoFacilitator, mayManageInvites, type GroupEntry, type Invite, type Role } from "../types"
import { counts, loading, roleName, stateBadge, summaryBadge } from "./common"
import { slotLine } from "./home"

function sameHeads(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join()
}

function when(v: number | string | null | undefined, tz: string): string {
  if (v === null || v === undefined || v === "") return ""
  const ms = typeof v === "number" ? v : Date.parse(v)
  return Number.isFinite(ms) ? formatInstant(ms, tz) : String(v)
}

export class DashboardView implements View {
  #invites: Invite[] | null = null
  #inviteError: string | null = null
  #created: Invite | null = null
  #copied = false
  #busyGroup: number | null = null
  #groupError: string | null = null

  constructor(private readonly app: App) {
    if (mayManageInvites(app.me)) void this.#loadInvites()
  }

  async #loadInvites(): Promise<void> {
    try {
      this.#invites = await listInvites(this.app.meeting.slug)
      this.#inviteError = null
    } catch (err) {
      this.#inviteError = err instanceof Error ? err.message : String(err)
    }
    this.app.requestRender()
  }

  async #lockOrReopen(n: number, lock: boolean): Promise<void> {
    this.#busyGroup = n
    this.#groupError = null
    this.app.requestRender()
    try {
      await (lock ? lockGroup : reopenGroup)(this.app.meeting.slug, n)
    } catch (err) {
      this.#groupError = `Group ${n}: ${err instanceof ApiError ? err.message : "the server could not be reached"}`
    }
    this.#busyGroup = null
    this.app.requestRender()
  }

  async #create(form: HTMLFormElement): Promise<void> {
    const data = new FormData(form)
    const field = (key: string) => {
      const v = data.get(key)
      return typeof v === "string" ? v : ""
    }
    const role = field("role") as Role
    const group = Number(field("group"))
    const name = field("name").trim()
    try {
      this.#created = await createInvite(this.app.meeting.slug, {
        role,
        ...(role === "rapporteur" || role === "moderator" ? { group } : {}),
        ...(name ? { name } : {}),
      })
      this.#copied = false
      this.#inviteError = null
      form.reset()
      await this.#loadInvites()
    } catch (err) {
      this.#inviteError = err instanceof Error ? err.message : String(err)
      this.app.requestRender()
    }
  }

  async #revoke(invite: Invite): Promise<void> {
    if (!confirm(`Revoke the invite of ${invite.name ?? roleName(invite.role)}? Their open sessions end at once.`)) return
    try {
      await revokeInvite(invite.id)
      await this.#loadInvites()
    } catch (err) {
      this.#inviteError = err instanceof Error ? err.message : String(err)
      this.app.requestRender()
    }
  }

  async #copy(url: string): Promise<void> {
    try {
      await navigator.clipboard.writeText(url)
      this.#copied = true
    } catch {
      // clipboard refused (insecure context): the URL stays selectable in the field
      ;(document.getElementById("created-url") as HTMLInputElement | null)?.select()
    }
    this.app.requestRender()
  }

  render(): TemplateResult {
    const m = this.app.meeting
    if (m.error) return html`<section class="page"><p class="note" role="alert">${m.error}</p></section>`
    if (!mayManageInvites(this.app.me)) {
      return html`<section class="page narrow"><h1>Dashboard</h1>
        <p>The dashboard is for the co-facilitators and the secretariat.</p></section>`
    }
    if (!m.indexDoc?.groups) return html`<section class="page">${loading("the dashboard")}</section>`
    return html`<section class="page wide" aria-labelledby="dash-title">
      <div class="page-head">
        <p class="eyebrow">Co-facilitators</p>
        <h1 id="dash-title">Dashboard</h1>
        <p class="meta">The six action groups live. Lock a group after its report-back; reopen it to allow late edits.</p>
        <p class="summary-line">
          <a class="btn btn-primary" href=${summaryPath(m.slug)} data-testid="summary-link">Open the chair's summary</a>
          ${summaryBadge(m.indexDoc?.summary)}
        </p>
      </div>
      ${this.#groupError ? html`<p class="banner banner-error" role="alert">${this.#groupError}</p>` : nothing}
      <div class="dash-grid">${m.groups.map(g => this.#column(g))}</div>
      ${this.#invitesPanel()}
    </section>`
  }

  #column(entry: GroupEntry): TemplateResult {
    const m = this.app.meeting
    const live = m.groupDoc(entry.number)
    const doc = live?.view
    const rules = m.indexDoc?.formatRules ?? DEFAULT_RULES
    const problems = doc?.sections ? checkOutcome(doc.sections, rules).length : 0
    const last = entry.submissions?.[entry.submissions.length - 1]
    const edited = last && live?.doc ? !sameHeads(live.heads(), last.heads ?? []) : false
    const cofac = isCoFacilitator(this.app.me)
    const busy = this.#busyGroup === entry.number
    return html`<article class="card dash-col" data-group=${entry.number} aria-labelledby=${`dg${entry.number}`}>
      <div class="group-card-head">
        <div>
          <p class="eyebrow">Group ${entry.number}</p>
          <h2 id=${`dg${entry.number}`} dir="auto"><a href=${groupPath(m.slug, entry.number)}>${entry.dimension}</a></h2>
        </div>
        ${stateBadge(entry.state, last?.version)}
      </div>
      ${slotLine(entry, m.timezone)}
      <div class="dash-facts">
        ${counts(m.countsOf(entry.docUrl))}
        <span class=${problems ? "warn-text small" : "ok small"}>${problems ? `${problems} format ${problems === 1 ? "warning" : "warnings"}` : "Format OK"}</span>
      </div>
      <p class="meta small">
        ${last
          ? html`v${last.version} · ${formatInstant(last.at, m.timezone)} · <span dir="auto">${last.by}</span>${last.override ? " · override" : ""}${edited ? html` · <strong class="warn-text">edited since</strong>` : nothing}`
          : "Not submitted yet"}
      </p>
      <div class="dash-draft" tabindex="0" aria-label=${`Live draft of group ${entry.number}`}>
        ${doc?.sections
          ? doc.sections.map(
              (s, si) => html`<h3 dir="auto">${si + 1}. ${s.title}</h3>
                ${s.bullets?.length
                  ? html`<ol>${s.bullets.map(b => html`<li dir="auto" class="status-${b.status}">${String(b.text ?? "") || html`<em class="meta">empty</em>`}</li>`)}</ol>`
                  : html`<p class="meta small">—</p>`}`,
            )
          : loading("draft")}
      </div>
      ${cofac
        ? html`<div class="dash-actions">
            ${entry.state === "locked"
              ? html`<button class="btn" type="button" ?disabled=${busy} data-action="reopen"
                  @click=${() => void this.#lockOrReopen(entry.number, false)}>Reopen</button>`
              : html`<button class="btn" type="button" ?disabled=${busy} data-action="lock"
                  @click=${() => void this.#lockOrReopen(entry.number, true)}>Lock</button>`}
            <a class="btn btn-quiet" href=${groupPath(m.slug, entry.number)}>Open</a>
          </div>`
        : nothing}
    </article>`
  }

  #invitesPanel(): TemplateResult {
    const tz = this.app.meeting.timezone
    const created = this.#created
    const groups = this.app.meeting.groups
    return html`<section class="card invites" aria-labelledby="inv-title">
      <h2 id="inv-title">Invite links</h2>
      <p class="meta">Each link signs one person in with one role. Share it privately; revoking it ends that person's open sessions at once.</p>
      <form class="invite-form" @submit=${(e: Event) => {
        e.preventDefault()
        void this.#create(e.target as HTMLFormElement)
      }}>
        <label>Role
          <select name="role">${ROLES.filter(r => r !== "secretariat").map(r => html`<option value=${r}>${roleName(r)}</option>`)}</select>
        </label>
        <label>Group (rapporteur, moderator)
          <select name="group">${groups.map(g => html`<option value=${g.number}>${g.number} · ${g.dimension}</option>`)}</select>
        </label>
        <label>Name <input name="name" autocomplete="off" dir="auto" placeholder="e.g. Delegation of Chile" /></label>
        <button class="btn btn-primary" type="submit">Create invite</button>
      </form>
      ${created?.url
        ? html`<div class="created" role="status">
            <label for="created-url">New invite for ${created.name ?? roleName(created.role)} — shown once</label>
            <div class="copy-row">
              <input id="created-url" readonly .value=${created.url} @focus=${(e: Event) => (e.target as HTMLInputElement).select()} />
              <button class="btn" type="button" @click=${() => void this.#copy(created.url!)}>${this.#copied ? "Copied" : "Copy"}</button>
            </div>
          </div>`
        : nothing}
      ${this.#inviteError ? html`<p class="banner banner-error" role="alert">${this.#inviteError}</p>` : nothing}
      ${this.#invites === null
        ? loading("invites")
        : html`<div class="table-wrap"><table class="table">
            <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Group</th><th scope="col">Created</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              ${this.#invites.map(
                inv => html`<tr data-invite=${inv.id}>
                  <td dir="auto">${inv.name ?? "—"}</td>
                  <td>${roleName(inv.role)}</td>
                  <td>${inv.group ?? "—"}</td>
                  <td>${when(inv.createdAt, tz)}</td>
                  <td>${inv.revokedAt ? html`<span class="badge badge-locked">Revoked</span>` : html`<span class="badge badge-drafting">Active</span>`}</td>
                  <td>${inv.revokedAt ? nothing : html`<button class="btn btn-quiet danger" type="button" @click=${() => void this.#revoke(inv)}>Revoke</button>`}</td>
                </tr>`,
              )}
            </tbody>
          </table></div>`}
    </section>`
  }
}

// Small shared pieces of markup: state badges, presence counts, person chips, role names.
import { html, nothing, type TemplateResult } from "lit-html"
import { summaryStatus } from "../labels"
import type { GroupState, IndexSummary, Role } from "../types"

export const ROLE_NAMES: Record<Role, string> = {
  secretariat: "Secretariat",
  "co-facilitator": "Co-facilitator",
  rapporteur: "Rapporteur",
  moderator: "Moderator",
  delegate: "Delegate",
  observer: "Observer",
}

export const roleName = (role: string): string => ROLE_NAMES[role as Role] ?? role

const STATE_NAMES: Record<GroupState, string> = {
  drafting: "Drafting",
  submitted: "Submitted",
  locked: "Locked",
}

export function stateBadge(state: string | undefined, version?: number): TemplateResult {
  const s = (state ?? "drafting") as GroupState
  const label = STATE_NAMES[s] ?? s
  return html`<span class="badge badge-${s}" data-state=${s}
    >${label}${s === "submitted" && version ? html` · v${version}` : nothing}</span
  >`
}

/** Where the chair's summary stands (from the meeting index, live): a badge and a line. */
export function summaryBadge(summary: IndexSummary | undefined): TemplateResult {
  const st = summaryStatus(summary)
  return html`<span class="summary-status">
    <span class="badge badge-${st.state}" data-summary-state=${st.state}>${st.label}</span>
    ${st.detail ? html`<span class="meta small" data-testid="summary-status">${st.detail}</span>` : nothing}
  </span>`
}

export function counts(c: { editors: number; viewers: number }): TemplateResult {
  return html`<span class="counts" title="Connected now">
    <span class="count"><span class="dot dot-edit" aria-hidden="true"></span>${c.editors}
      ${c.editors === 1 ? "editor" : "editors"}</span>
    <span class="count"><span class="dot dot-view" aria-hidden="true"></span>${c.viewers}
      ${c.viewers === 1 ? "viewer" : "viewers"}</span>
  </span>`
}

const PALETTE = ["#1f5f8b", "#8b3a1f", "#2e7d4f", "#6b3fa0", "#a0661f", "#1f7f86", "#9b2d5b"]

/** A stable colour per person, for presence markers. */
export function personColor(personId: string): string {
  let h = 0
  for (let i = 0; i < personId.length; i++) h = (h * 31 + personId.charCodeAt(i)) >>> 0
  return PALETTE[h % PALETTE.length] ?? "#1f5f8b"
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/u).filter(Boolean)
  return ((parts[0]?.[0] ?? "?") + (parts.length > 1 ? (parts[parts.length - 1]?.[0] ?? "") : "")).toUpperCase()
}

export function loading(what: string): TemplateResult {
  return html`<div class="loading" role="status"><span class="spinner" aria-hidden="true"></span> Loading ${what}…</div>`
}

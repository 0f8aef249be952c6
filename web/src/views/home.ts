// Meeting home (everyone): the meeting, the six action groups with live progress (state, bullets
// and words per section, people connected, time left in the group's session) and the agenda.
import { html, nothing, type TemplateResult } from "lit-html"
import type { App, View } from "../app"
import { wordCount } from "../format"
import { groupPath, summaryPath } from "../router"
import { describeSlot, formatDay, formatInstant, slotStatus } from "../time"
import type { AgendaDay, GroupDoc, GroupEntry } from "../types"
import { counts, loading, stateBadge, summaryBadge } from "./common"

export function dateRange(start?: string, end?: string): string {
  if (!start) return ""
  const fmt = (d: string, opts: Intl.DateTimeFormatOptions) =>
    new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: "UTC" }).format(new Date(`${d}T12:00:00Z`))
  if (!end || end === start) return fmt(start, { day: "numeric", month: "long", year: "numeric" })
  return `${fmt(start, { day: "numeric" })}–${fmt(end, { day: "numeric", month: "long", year: "numeric" })}`
}

/** Bullets and words per section of an outcome. */
export function sectionStats(doc: GroupDoc | undefined): { id: string; title: string; bullets: number; words: number }[] {
  return (doc?.sections ?? []).map(s => ({
    id: s.id,
    title: s.title,
    bullets: s.bullets?.length ?? 0,
    words: (s.bullets ?? []).reduce((n, b) => n + wordCount(String(b.text ?? "")), 0),
  }))
}

export function slotLine(entry: GroupEntry, timezone: string): TemplateResult {
  const slot = entry.slot
  if (!slot?.date) return html``
  const status = slotStatus(slot, timezone, Date.now())
  return html`<div class="slot">
    <span>${formatDay(slot.date)} · ${slot.start}–${slot.end}${slot.room ? ` · ${slot.room}` : ""}</span>
    <span class="slot-status slot-${status.state}" data-slot=${status.state}>${describeSlot(status)}</span>
  </div>`
}

export class HomeView implements View {
  constructor(private readonly app: App) {}

  render(): TemplateResult {
    const m = this.app.meeting
    if (m.error) return html`<section class="page"><p class="note" role="alert">${m.error}</p></section>`
    const index = m.indexDoc
    if (!index?.meeting) return html`<section class="page">${loading("the meeting")}</section>`
    const info = index.meeting
    return html`<section class="page" aria-labelledby="meeting-title">
      <div class="page-head">
        <p class="eyebrow">Meeting</p>
        <h1 id="meeting-title" dir="auto">${info.title}</h1>
        <p class="meta" dir="auto">${info.venue} · ${dateRange(info.startDate, info.endDate)}</p>
        <p class="meta small">All times are local time in the meeting venue (${info.timezone}).</p>
      </div>

      <h2 class="section-title">Action groups</h2>
      <div class="group-grid" role="list">${m.groups.map(g => this.#groupCard(g))}</div>

      <h2 class="section-title">Chair's summary</h2>
      <div class="card summary-card" data-testid="summary">
        <div>
          <strong><a href=${summaryPath(m.slug)} data-testid="summary-link">Chair's summary</a></strong>
          <p class="meta small">Prepared by the co-facilitators from the submitted outcomes of the six action groups.</p>
        </div>
        ${summaryBadge(index.summary)}
      </div>

      <h2 class="section-title">Agenda</h2>
      ${(index.agenda ?? []).map(day => this.#day(day))}
    </section>`
  }

  #groupCard(entry: GroupEntry): TemplateResult {
    const m = this.app.meeting
    const live = m.groupDoc(entry.number)
    const stats = sectionStats(live?.view)
    const last = entry.submissions?.[entry.submissions.length - 1]
    return html`<article class="card group-card" role="listitem" data-group=${entry.number}
      aria-labelledby=${`g${entry.number}-title`}>
      <div class="group-card-head">
        <div>
          <p class="eyebrow">Action group ${entry.number}</p>
          <h3 id=${`g${entry.number}-title`}><a href=${groupPath(m.slug, entry.number)} dir="auto">${entry.dimension}</a></h3>
        </div>
        ${stateBadge(entry.state, last?.version)}
      </div>
      ${slotLine(entry, m.timezone)}
      <table class="mini-table">
        <caption class="visually-hidden">Progress of group ${entry.number}</caption>
        <thead><tr><th scope="col">Section</th><th scope="col" class="num">Bullets</th><th scope="col" class="num">Words</th></tr></thead>
        <tbody>
          ${stats.length
            ? stats.map(
                s => html`<tr data-section=${s.id}>
                  <td dir="auto">${s.title}</td>
                  <td class="num" data-bullets>${s.bullets}</td>
                  <td class="num">${s.words}</td>
                </tr>`,
              )
            : html`<tr><td colspan="3" class="meta">${live?.status === "unavailable" ? "Not available offline yet" : "Loading…"}</td></tr>`}
        </tbody>
      </table>
      <div class="group-card-foot">
        ${counts(m.countsOf(entry.docUrl))}
        ${last
          ? html`<span class="meta small" data-testid="last-submission"
              >Submitted v${last.version} · ${formatInstant(last.at, m.timezone)} by <span dir="auto">${last.by}</span
              >${last.override ? " (override)" : ""}</span
            >`
          : html`<span class="meta small">Not submitted yet</span>`}
      </div>
    </article>`
  }

  #day(day: AgendaDay): TemplateResult {
    const m = this.app.meeting
    return html`<section class="card agenda-day" aria-labelledby=${`day-${day.day}`}>
      <h3 id=${`day-${day.day}`}>Day ${day.day} · ${formatDay(day.date)} <span class="meta" dir="auto">— ${day.title}</span></h3>
      <ol class="agenda">
        ${(day.sessions ?? []).map(
          s => html`<li class="agenda-item agenda-${s.kind}">
            <span class="agenda-time">${s.start}–${s.end}</span>
            <span class="agenda-title" dir="auto">${s.title}
              ${s.groups?.length
                ? html`<span class="agenda-groups">
                    ${s.groups.map(n => {
                      const g = m.group(n)
                      return html`<a class="chip" href=${groupPath(m.slug, n)}>Group ${n}${g ? html` · ${g.dimension}` : nothing}</a>`
                    })}
                  </span>`
                : nothing}
            </span>
            <span class="agenda-kind">${s.kind}</span>
          </li>`,
        )}
      </ol>
    </section>`
  }
}

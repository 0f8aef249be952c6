// Words for the reader: who made a change (name and role, from the `people` of a diff or change
// log answer) and where the chair's summary stands (the meeting index's `summary` entry).
import type { IndexSummary, People, Role } from "./types"

const ROLES: Record<Role, string> = {
  secretariat: "secretariat",
  "co-facilitator": "co-facilitator",
  rapporteur: "rapporteur",
  moderator: "moderator",
  delegate: "delegate",
  observer: "observer",
}

/** "Ana Ruiz (rapporteur, group 1)"; an author the server could not name stays anonymous. */
export function authorLabel(id: string, people: People): string {
  const p = people[id]
  if (p) {
    const role = ROLES[p.role] ?? p.role
    return `${p.name} (${role}${p.group ? `, group ${p.group}` : ""})`
  }
  return id.startsWith("actor:") ? "an editor not on record" : id
}

export interface SummaryStatus {
  state: IndexSummary["state"]
  /** The badge. */
  label: string
  /** A line beside it, or "". */
  detail: string
}

/** What the meeting home and dashboard say about the chair's summary. */
export function summaryStatus(s: IndexSummary | undefined): SummaryStatus {
  const state = s?.state ?? "drafting"
  const revision = s?.revision ?? 1
  const rev = revision > 1 ? `Revision ${revision}. ` : ""
  switch (state) {
    case "approved": {
      const names = s?.approvedBy ?? []
      return {
        state,
        label: "Partly approved",
        detail: `${rev}Approved by ${names.join(", ") || "a co-facilitator"}; issued once every co-facilitator approves.`,
      }
    }
    case "issued":
      return { state, label: "Issued", detail: `${rev}Approved by every co-facilitator.`.trim() }
    default:
      return { state: "drafting", label: "Drafting", detail: rev.trim() }
  }
}

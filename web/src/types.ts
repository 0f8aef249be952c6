// Types of the Automerge documents (docs/schema.md, version 1) and of the REST API (docs/api.md)
// as the web app reads them. Document types describe what a client may find; readers still guard
// against missing keys because a document may be partly synced.

export type Role =
  | "secretariat"
  | "co-facilitator"
  | "rapporteur"
  | "moderator"
  | "delegate"
  | "observer"

export const ROLES: readonly Role[] = [
  "co-facilitator",
  "rapporteur",
  "moderator",
  "delegate",
  "observer",
  "secretariat",
]

export type SessionKind = "plenary" | "breakout" | "break" | "registration"

export interface AgendaSession {
  start: string
  end: string
  title: string
  kind: SessionKind
  groups?: number[]
}

export interface AgendaDay {
  day: number
  date: string
  title: string
  sessions: AgendaSession[]
}

export interface FormatRules {
  maxWordsPerBullet: number
  maxBulletsPerSection: number
  forbidEmpty: boolean
  forbidDuplicates: boolean
  singleParagraph: boolean
}

export const DEFAULT_RULES: FormatRules = {
  maxWordsPerBullet: 50,
  maxBulletsPerSection: 10,
  forbidEmpty: true,
  forbidDuplicates: true,
  singleParagraph: true,
}

export interface Slot {
  day: number
  date: string
  start: string
  end: string
  room: string
}

export type GroupState = "drafting" | "submitted" | "locked"

export interface Submission {
  version: number
  at: number
  by: string
  byPerson: string
  heads: string[]
  contentHash: string
  override: boolean
}

export interface GroupEntry {
  number: number
  dimension: string
  docUrl: string
  slot: Slot
  state: GroupState
  submissions: Submission[]
}

export interface MeetingInfo {
  slug: string
  title: string
  venue: string
  startDate: string
  endDate: string
  timezone: string
}

export interface IndexDoc {
  schema: "rapporteur.meeting-index"
  schemaVersion: number
  meeting: MeetingInfo
  agenda: AgendaDay[]
  formatRules: FormatRules
  sections: { id: string; title: string }[]
  groups: GroupEntry[]
  summary: IndexSummary
}

/**
 * Where the chair's summary stands, as the index shows it: `approved` while the approval of at
 * least one co-facilitator holds for the current text (the last approval issues it).
 */
export interface IndexSummary {
  docUrl: string
  state: "drafting" | "approved" | "issued"
  revision?: number
  /** Names of the co-facilitators whose approval holds for the current text. */
  approvedBy?: string[]
}

export type BulletStatus = "proposed" | "agreed" | "bracketed"
export const BULLET_STATUSES: readonly BulletStatus[] = ["proposed", "agreed", "bracketed"]

export interface Bullet {
  id: string
  text: string
  proposedBy: string[]
  tags: string[]
  status: BulletStatus
  createdBy: string
  createdAt: number
}

export interface OutcomeSection {
  id: string
  title: string
  bullets: Bullet[]
}

export interface GroupDoc {
  schema: "rapporteur.group-outcome"
  schemaVersion: number
  meeting: string
  group: {
    number: number
    dimension: string
    moderator: string
    rapporteur: string
    questions: string[]
  }
  sections: OutcomeSection[]
}

export interface Person {
  id: string
  name: string
  role: Role
  group: number | null
  meeting: string
}

export interface MeetingDetails {
  slug: string
  title: string
  venue: string
  startDate: string
  endDate: string
  timezone: string
  indexDocUrl: string
  summaryDocUrl: string
  summaryState: string
  formatRules: FormatRules
  groups: {
    number: number
    dimension: string
    outcomeDocUrl: string
    state: GroupState
    submissions: Submission[]
  }[]
}

export interface Invite {
  id: string
  role: Role
  group: number | null
  name: string | null
  createdAt: number | string
  expiresAt: number | string | null
  revokedAt?: number | string | null
  url?: string
  token?: string
}

export interface Violation {
  rule: string
  sectionId: string
  bulletId: string | null
  message: string
}

/** Presence counts per document id, from the server's `presence` ephemeral messages. */
export type PresenceTable = Record<string, { editors: number; viewers: number }>

/** Who may edit a group's outcome (schema.md: rapporteur and moderator of that group, co-facilitators). */
export function canEditGroup(person: Person | null, group: number): boolean {
  if (!person) return false
  if (person.role === "co-facilitator") return true
  return (person.role === "rapporteur" || person.role === "moderator") && person.group === group
}

export const isCoFacilitator = (person: Person | null): boolean => person?.role === "co-facilitator"
export const mayManageInvites = (person: Person | null): boolean =>
  person?.role === "co-facilitator" || person?.role === "secretariat"

/** A source bullet cited by a summary item (docs/schema.md, chair's summary). */
export interface SummarySource {
  group: number
  bulletId: string
  version: number
  text?: string
  tags?: string[]
}

export interface StaleFlag {
  group: number
  bulletId: string
  version: number
  oldText: string
  newText: string
}

export interface SummaryItem {
  id: string
  text: string
  sources: SummarySource[]
  mergedText?: string
  stale?: StaleFlag[]
  removedAtSource?: { group: number; bulletId: string; version: number }[]
  consolidatedFrom?: { itemId: string; text: string }[]
}

export interface SummarySection {
  id: string
  title: string
  items: SummaryItem[]
}

export interface SummaryDoc {
  schema: "rapporteur.chair-summary"
  schemaVersion: number
  meeting: string
  title: string
  preamble: string
  state: "drafting" | "issued"
  revision?: number
  sections: SummarySection[]
  approvals?: { person: string; name: string; at: number; contentHash: string; revision: number }[]
  revisions?: { revision: number; issuedAt: number; heads: string[]; contentHash: string }[]
  dismissedClusters?: string[]
}

export interface Signoff {
  state: "drafting" | "issued"
  revision: number
  approvedBy: { person: string; name: string }[]
  waitingFor: { person: string; name: string }[]
}

export interface ClusterMember {
  itemId: string
  sectionId: string
  text: string
  groups: number[]
  sources: SummarySource[]
}

export interface Cluster {
  id: string
  score: number
  items: ClusterMember[]
}

/** The people a diff or change log mentions, by person id. */
export type People = Record<string, { name: string; role: Role; group: number | null }>

export interface Diff {
  added: { id: string; sectionId: string; text: string; by: string[] }[]
  removed: { id: string; sectionId: string; text: string; by: string[] }[]
  changed: { id: string; sectionId: string; oldText: string; newText: string; by: string[] }[]
  authors: string[]
}

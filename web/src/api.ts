// REST client for docs/api.md. Same origin; the session cookie authenticates. Keeps the last
// identity and meeting answers in localStorage so a page opened offline can still start.
import type { Cluster, Diff, Invite, MeetingDetails, People, Person, Role, Signoff, Submission, Violation } from "./types"

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly violations: Violation[] = [],
  ) {
    super(message)
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body !== undefined ? { "content-type": "application/json" } : {},
    body: body !== undefined ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  if (!res.ok) {
    const err = (parsed ?? {}) as { error?: string; violations?: Violation[] }
    throw new ApiError(res.status, err.error ?? `${res.status} ${res.statusText}`, err.violations ?? [])
  }
  return parsed as T
}

const cacheKey = (what: string) => `rapporteur:${what}`

function remember<T>(what: string, value: T): T {
  try {
    localStorage.setItem(cacheKey(what), JSON.stringify(value))
  } catch {
    // storage full or disabled: the cache is only a convenience for offline starts
  }
  return value
}

function recall<T>(what: string): T | null {
  try {
    const raw = localStorage.getItem(cacheKey(what))
    return raw ? (JSON.parse(raw) as T) : null
  } catch {
    return null
  }
}

/** The result of asking who this browser is. */
export type Identity =
  | { kind: "person"; person: Person; fromCache: boolean }
  | { kind: "anonymous" }

export async function fetchMe(): Promise<Identity> {
  try {
    const me = await call<{ person: Person }>("GET", "/api/me")
    remember("me", me.person)
    return { kind: "person", person: me.person, fromCache: false }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forget()
      return { kind: "anonymous" }
    }
    const cached = recall<Person>("me")
    if (cached) return { kind: "person", person: cached, fromCache: true }
    throw err
  }
}

function forget(): void {
  try {
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith("rapporteur:")) localStorage.removeItem(key)
    }
  } catch {
    // nothing cached
  }
}

export async function logout(): Promise<void> {
  await call<void>("POST", "/api/logout")
  forget()
}

export async function fetchMeeting(slug: string): Promise<MeetingDetails> {
  try {
    return remember(`meeting:${slug}`, await call<MeetingDetails>("GET", `/api/meetings/${encodeURIComponent(slug)}`))
  } catch (err) {
    const cached = recall<MeetingDetails>(`meeting:${slug}`)
    if (cached && !(err instanceof ApiError)) return cached
    throw err
  }
}

const groupPath = (slug: string, n: number) => `/api/meetings/${encodeURIComponent(slug)}/groups/${n}`

export async function submitGroup(slug: string, n: number, override: boolean): Promise<Submission> {
  const res = await call<{ submission: Submission }>("POST", `${groupPath(slug, n)}/submit`, { override })
  return res.submission
}

export const lockGroup = (slug: string, n: number) => call<{ state: string }>("POST", `${groupPath(slug, n)}/lock`)
export const reopenGroup = (slug: string, n: number) =>
  call<{ state: string }>("POST", `${groupPath(slug, n)}/reopen`)

export const listInvites = (slug: string) =>
  call<Invite[]>("GET", `/api/meetings/${encodeURIComponent(slug)}/invites`)

export const createInvite = (slug: string, body: { role: Role; group?: number; name?: string }) =>
  call<Invite>("POST", `/api/meetings/${encodeURIComponent(slug)}/invites`, body)

export const revokeInvite = (id: string) => call<void>("DELETE", `/api/invites/${encodeURIComponent(id)}`)

// ---- the chair's summary (docs/api.md, "Chair's summary") ----------------------------------------

const summaryPath = (slug: string) => `/api/meetings/${encodeURIComponent(slug)}/summary`

export interface MergeReport {
  added: number
  refreshed: number
  stale: number
  removedAtSource: number
}

export const fetchSignoff = async (slug: string): Promise<Signoff> =>
  (await call<{ signoff: Signoff }>("GET", summaryPath(slug))).signoff
export const mergeSummary = (slug: string) => call<MergeReport>("POST", `${summaryPath(slug)}/merge`)
export const resolveItem = (slug: string, itemId: string, action: "take-source" | "keep-mine") =>
  call<void>("POST", `${summaryPath(slug)}/items/${encodeURIComponent(itemId)}/resolve`, { action })
export const updateUnedited = (slug: string) =>
  call<{ updated: number }>("POST", `${summaryPath(slug)}/update-unedited`)
export const fetchClusters = (slug: string) => call<Cluster[]>("GET", `${summaryPath(slug)}/clusters`)
export const mergeCluster = (slug: string, id: string, text?: string) =>
  call<{ itemId: string }>("POST", `${summaryPath(slug)}/clusters/${encodeURIComponent(id)}/merge`, { text })
export const dismissCluster = (slug: string, id: string) =>
  call<void>("POST", `${summaryPath(slug)}/clusters/${encodeURIComponent(id)}/dismiss`)
export const approveSummary = (slug: string) => call<Signoff>("POST", `${summaryPath(slug)}/approve`)
export const newRevision = (slug: string) =>
  call<{ revision: number; state: string }>("POST", `${summaryPath(slug)}/revisions`)
/** A comparison of two versions, with the names and roles of the people who made the changes. */
export interface DiffAnswer {
  diff: Diff
  names: Record<string, string>
  people: People
}

export const summaryDiff = (slug: string, from: string) =>
  call<DiffAnswer>("GET", `${summaryPath(slug)}/diff?from=${encodeURIComponent(from)}`)
export const groupDiff = (slug: string, n: number, from: string, to = "current") =>
  call<DiffAnswer>(
    "GET",
    `${groupPath(slug, n)}/diff?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
  )
export const summaryExportUrl = (slug: string, format: string) => `${summaryPath(slug)}/export?format=${format}`
export const groupExportUrl = (slug: string, n: number, format: string) => `${groupPath(slug, n)}/export?format=${format}`

// REST client for docs/api.md. Same origin; the session cookie authenticates. Keeps the last
// identity and meeting answers in localStorage so a page opened offline can still start.
import type { Invite, MeetingDetails, Person, Role, Submission, Violation } from "./types"

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

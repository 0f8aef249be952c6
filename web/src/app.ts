// The page-wide context every view receives: who is signed in, the live repo, the meeting being
// followed, and how to ask for a render or move to another page.
import type { Live } from "./live"
import type { MeetingContext } from "./meeting"
import type { Person } from "./types"
import type { TemplateResult } from "lit-html"

export interface App {
  me: Person
  /** True when /api/me could not be reached and the identity comes from this browser's cache. */
  meFromCache: boolean
  live: Live
  meeting: MeetingContext
  requestRender(): void
  navigate(path: string): void
}

/** A page: renders from the current state; may act on the DOM after each render. */
export interface View {
  render(): TemplateResult
  afterRender?(): void
  dispose?(): void
}

// A meeting as the page follows it: REST details (for the index URL), the live index document, the
// presence table the server sends beside it, and the live group documents, opened on demand.
import type { LiveDoc, Live } from "./live"
import { fetchMeeting } from "./api"
import type { GroupDoc, GroupEntry, IndexDoc, MeetingDetails, PresenceTable, SummaryDoc } from "./types"

export class MeetingContext {
  details: MeetingDetails | null = null
  index: LiveDoc<IndexDoc> | null = null
  presence: PresenceTable = {}
  error: string | null = null
  #groupDocs = new Map<number, LiveDoc<GroupDoc>>()
  #summaryDoc: LiveDoc<SummaryDoc> | null = null

  constructor(
    readonly slug: string,
    private readonly live: Live,
    private readonly onUpdate: () => void,
  ) {
    void this.#load()
  }

  async #load(): Promise<void> {
    try {
      this.details = await fetchMeeting(this.slug)
      this.index = this.live.doc<IndexDoc>(this.details.indexDocUrl)
      this.index.changed.on(() => this.onUpdate())
      this.index.ephemeral.on(message => {
        const m = message as { type?: string; docs?: PresenceTable }
        if (m?.type === "presence" && m.docs && typeof m.docs === "object") {
          this.presence = { ...this.presence, ...m.docs }
          this.onUpdate()
        }
      })
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err)
    }
    this.onUpdate()
  }

  get indexDoc(): IndexDoc | undefined {
    return this.index?.view
  }

  get timezone(): string {
    return this.indexDoc?.meeting?.timezone ?? this.details?.timezone ?? "UTC"
  }

  get groups(): GroupEntry[] {
    return this.indexDoc?.groups ?? []
  }

  group(n: number): GroupEntry | undefined {
    return this.groups.find(g => g.number === n)
  }

  /** The live outcome document of group n, once its URL is known. */
  groupDoc(n: number): LiveDoc<GroupDoc> | null {
    const existing = this.#groupDocs.get(n)
    if (existing) return existing
    const url = this.group(n)?.docUrl ?? this.details?.groups.find(g => g.number === n)?.outcomeDocUrl
    if (!url) return null
    const doc = this.live.doc<GroupDoc>(url)
    doc.changed.on(() => this.onUpdate())
    this.#groupDocs.set(n, doc)
    return doc
  }

  /** The live chair's summary, once its URL is known. */
  summaryDoc(): LiveDoc<SummaryDoc> | null {
    if (this.#summaryDoc) return this.#summaryDoc
    const url = this.indexDoc?.summary?.docUrl ?? this.details?.summaryDocUrl
    if (!url) return null
    this.#summaryDoc = this.live.doc<SummaryDoc>(url)
    this.#summaryDoc.changed.on(() => this.onUpdate())
    return this.#summaryDoc
  }

  /** The summary item that cites bullet `bulletId` of group `group`, if any: "where did it go". */
  itemCiting(group: number, bulletId: string): { sectionId: string; itemId: string } | null {
    for (const s of this.summaryDoc()?.view?.sections ?? []) {
      for (const item of s.items ?? []) {
        if ((item.sources ?? []).some(src => src.group === group && src.bulletId === bulletId)) {
          return { sectionId: s.id, itemId: item.id }
        }
      }
    }
    return null
  }

  /** Presence counts of a document URL. */
  countsOf(url: string | undefined): { editors: number; viewers: number } {
    if (!url) return { editors: 0, viewers: 0 }
    const id = url.replace(/^automerge:/, "")
    return this.presence[id] ?? { editors: 0, viewers: 0 }
  }
}

// Text edits as splices: the difference between two textarea values as one splice (so an edit goes
// into the Automerge Text without replacing it), remote patches as splices, and the transform of a
// local selection through splices so the caret stays where the person left it.

export interface Splice {
  index: number
  deleteCount: number
  insert: string
}

export interface Selection {
  start: number
  end: number
  direction?: "forward" | "backward" | "none"
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff

/**
 * The single splice that turns `before` into `after` (null when equal). `caret` is where the caret
 * is in `after` just after the edit: it resolves ambiguous cases (typing "a" inside "aa") so that
 * the splice sits where the person typed. Never splits a surrogate pair.
 */
export function diffText(before: string, after: string, caret?: number): Splice | null {
  if (before === after) return null
  const minLen = Math.min(before.length, after.length)
  let prefix = 0
  while (prefix < minLen && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++
  if (caret !== undefined) {
    const grown = Math.max(0, after.length - before.length)
    prefix = Math.max(0, Math.min(prefix, caret - grown))
  }
  if (prefix > 0 && isLowSurrogate(after.charCodeAt(prefix)) && isHighSurrogate(after.charCodeAt(prefix - 1))) {
    prefix--
  }
  let suffix = 0
  const maxSuffix = minLen - prefix
  while (
    suffix < maxSuffix &&
    before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)
  ) {
    suffix++
  }
  if (suffix > 0 && isLowSurrogate(after.charCodeAt(after.length - suffix))) {
    // the suffix starts in the middle of a pair: keep the whole pair inside the splice
    suffix--
  }
  return {
    index: prefix,
    deleteCount: before.length - prefix - suffix,
    insert: after.slice(prefix, after.length - suffix),
  }
}

/** Applies splices in order. */
export function applySplices(text: string, splices: readonly Splice[]): string {
  let out = text
  for (const s of splices) out = out.slice(0, s.index) + s.insert + out.slice(s.index + s.deleteCount)
  return out
}

/**
 * Where a position goes when a splice happens elsewhere. A splice strictly before moves it; a
 * splice at the position inserts after it (the caret stays before remote text typed at the same
 * spot); a position inside a deleted range moves to the end of what replaced it.
 */
export function transformPosition(pos: number, s: Splice): number {
  const delEnd = s.index + s.deleteCount
  if (pos < s.index || (pos === s.index && s.deleteCount === 0)) return pos
  if (pos >= delEnd) return pos + s.insert.length - s.deleteCount
  return s.index + s.insert.length
}

/** Transforms a selection through splices applied in order. */
export function transformSelection(sel: Selection, splices: readonly Splice[]): Selection {
  let { start, end } = sel
  for (const s of splices) {
    start = transformPosition(start, s)
    end = transformPosition(end, s)
  }
  if (end < start) end = start
  return { start, end, direction: sel.direction ?? "none" }
}

/** The subset of Automerge's patch shapes the editor reads. */
export type TextPatch =
  | { action: "splice"; path: readonly (string | number)[]; value: string }
  | { action: "del"; path: readonly (string | number)[]; length?: number }
  | { action: string; path: readonly (string | number)[] }

/**
 * Splices on the text at `textPath`, from Automerge patches. Returns null when a patch replaces
 * the text object itself (then the caller falls back to diffing).
 */
export function splicesFromPatches(
  patches: readonly TextPatch[],
  textPath: readonly (string | number)[],
): Splice[] | null {
  const out: Splice[] = []
  const n = textPath.length
  for (const p of patches) {
    if (p.path.length < n) {
      if (textPath.slice(0, p.path.length).every((k, i) => k === p.path[i])) return null
      continue
    }
    if (!textPath.every((k, i) => k === p.path[i])) continue
    if (p.path.length !== n + 1) return null
    const index = p.path[n]
    if (typeof index !== "number") return null
    if (p.action === "splice" && "value" in p) out.push({ index, deleteCount: 0, insert: p.value })
    else if (p.action === "del") {
      const length = "length" in p && typeof p.length === "number" ? p.length : 1
      out.push({ index, deleteCount: length, insert: "" })
    } else return null
  }
  return out
}

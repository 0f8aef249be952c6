// Plain JavaScript views of Automerge documents. Automerge 3 returns scalar strings (the schema's
// `string`, as the server writes them) as ImmutableString objects and collaborative text as JS
// strings; views want plain strings for both. Writers must do the opposite: scalar fields are
// written as ImmutableString (a plain JS string assigned in a change becomes Text).
import * as A from "@automerge/automerge"

/** A deep copy with every ImmutableString turned into a JS string. */
export function plain<T>(value: unknown): T {
  return convert(value) as T
}

function convert(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value
  if (A.isImmutableString(value)) return value.toString()
  if (Array.isArray(value)) return value.map(convert)
  if (value instanceof Uint8Array || value instanceof Date) return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = convert(v)
  return out
}

/** A scalar string for writing into a document. */
export const scalar = (value: string): A.ImmutableString => new A.ImmutableString(value)

/** The string value of a field read inside a change (Text, ImmutableString or string). */
export function str(value: unknown): string {
  if (typeof value === "string") return value
  if (A.isImmutableString(value)) return value.toString()
  return value === null || value === undefined ? "" : JSON.stringify(value)
}

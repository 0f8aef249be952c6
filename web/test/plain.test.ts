// Unit tests of plain views and scalar writes on real Automerge documents.
import * as A from "@automerge/automerge"
import { describe, expect, it } from "vitest"
import { plain, scalar, str } from "../src/plain"

describe("plain", () => {
  it("turns scalar strings into JS strings and keeps text", () => {
    let doc = A.from<{ id: unknown; text: string; tags: unknown[] }>({ id: scalar("b1"), text: "hello", tags: [scalar("t")] })
    doc = A.change(doc, d => A.splice(d, ["text"], 5, 0, " world"))
    expect(A.isImmutableString(doc.id)).toBe(true)
    expect(plain(doc)).toEqual({ id: "b1", text: "hello world", tags: ["t"] })
    expect(str(doc.id)).toBe("b1")
    expect(str(undefined)).toBe("")
  })
})

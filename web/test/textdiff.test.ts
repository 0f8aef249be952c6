// Unit tests of text diffing into splices, patches into splices, and selection transforms.
import { describe, expect, it } from "vitest"
import {
  applySplices,
  diffText,
  splicesFromPatches,
  transformPosition,
  transformSelection,
} from "../src/textdiff"

describe("diffText", () => {
  it("returns null for equal texts", () => {
    expect(diffText("abc", "abc")).toBeNull()
  })
  it("finds an insertion, a deletion and a replacement", () => {
    expect(diffText("hello world", "hello brave world")).toEqual({ index: 6, deleteCount: 0, insert: "brave " })
    expect(diffText("hello brave world", "hello world")).toEqual({ index: 6, deleteCount: 6, insert: "" })
    expect(diffText("the cat sat", "the dog sat")).toEqual({ index: 4, deleteCount: 3, insert: "dog" })
  })
  it("uses the caret to place an ambiguous insertion where it was typed", () => {
    // typed "a" between the two a's: the caret is at 2 afterwards
    expect(diffText("aa", "aaa", 2)).toEqual({ index: 1, deleteCount: 0, insert: "a" })
    expect(diffText("aa", "aaa", 1)).toEqual({ index: 0, deleteCount: 0, insert: "a" })
    expect(diffText("aa", "aaa")).toEqual({ index: 2, deleteCount: 0, insert: "a" })
  })
  it("uses the caret for an ambiguous deletion", () => {
    expect(diffText("abbc", "abc", 1)).toEqual({ index: 1, deleteCount: 1, insert: "" })
    expect(diffText("abbc", "abc", 2)).toEqual({ index: 2, deleteCount: 1, insert: "" })
  })
  it("never splits a surrogate pair", () => {
    const s = diffText("a😀b", "a😃b")!
    expect(s).toEqual({ index: 1, deleteCount: 2, insert: "😃" })
  })
  it("round-trips through applySplices on mixed scripts", () => {
    const pairs: [string, string][] = [
      ["ضمان حصول المهاجرين", "ضمان حصول جميع المهاجرين"],
      ["Garantizar el acceso", "Garantizar el acceso universal"],
      ["", "texte"],
      ["texte", ""],
    ]
    for (const [a, b] of pairs) expect(applySplices(a, [diffText(a, b)!])).toBe(b)
  })
})

describe("transformPosition", () => {
  it("moves a position after a splice before it", () => {
    expect(transformPosition(5, { index: 2, deleteCount: 0, insert: "xyz" })).toBe(8)
    expect(transformPosition(5, { index: 0, deleteCount: 2, insert: "" })).toBe(3)
  })
  it("keeps a position before a splice after it", () => {
    expect(transformPosition(2, { index: 5, deleteCount: 3, insert: "x" })).toBe(2)
  })
  it("stays before remote text inserted exactly at the caret", () => {
    expect(transformPosition(4, { index: 4, deleteCount: 0, insert: "remote" })).toBe(4)
  })
  it("moves a position inside a deleted range to the end of the replacement", () => {
    expect(transformPosition(5, { index: 3, deleteCount: 4, insert: "ab" })).toBe(5)
    expect(transformPosition(5, { index: 3, deleteCount: 4, insert: "" })).toBe(3)
  })
})

describe("transformSelection", () => {
  it("keeps the caret on the same character while another person types before it", () => {
    const text = "Protect migrant workers"
    const caret = text.indexOf("workers")
    const remote = [{ index: 0, deleteCount: 0, insert: "Fully " }]
    const after = applySplices(text, remote)
    const sel = transformSelection({ start: caret, end: caret }, remote)
    expect(after.slice(sel.start)).toBe("workers")
  })
  it("keeps a selection around the same words", () => {
    const text = "one two three"
    const remote = [
      { index: 0, deleteCount: 3, insert: "1" },
      { index: 8, deleteCount: 0, insert: "!" },
    ]
    const after = applySplices(text, remote)
    const sel = transformSelection({ start: 4, end: 7, direction: "forward" }, remote)
    expect(after.slice(sel.start, sel.end)).toBe("two")
    expect(sel.direction).toBe("forward")
  })
  it("collapses a selection whose text was deleted", () => {
    const sel = transformSelection({ start: 4, end: 7 }, [{ index: 2, deleteCount: 8, insert: "" }])
    expect(sel).toEqual({ start: 2, end: 2, direction: "none" })
  })
})

describe("splicesFromPatches", () => {
  const path = ["sections", 0, "bullets", 1, "text"]
  it("reads splice and del patches on the text", () => {
    const s = splicesFromPatches(
      [
        { action: "splice", path: [...path, 3], value: "abc" },
        { action: "del", path: [...path, 0], length: 2 },
        { action: "del", path: [...path, 4] },
        { action: "splice", path: ["sections", 0, "bullets", 0, "text", 0], value: "other bullet" },
        { action: "put", path: ["sections", 0, "bullets", 1, "status"] },
      ],
      path,
    )
    expect(s).toEqual([
      { index: 3, deleteCount: 0, insert: "abc" },
      { index: 0, deleteCount: 2, insert: "" },
      { index: 4, deleteCount: 1, insert: "" },
    ])
  })
  it("gives up when the text or its bullet is replaced", () => {
    expect(splicesFromPatches([{ action: "put", path }], path)).toBeNull()
    expect(splicesFromPatches([{ action: "insert", path: ["sections", 0, "bullets", 1] }], path)).toBeNull()
  })
})

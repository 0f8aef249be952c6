// Unit tests of the format rules.
import { describe, expect, it } from "vitest"
import { checkOutcome, duplicateKey, hasLineBreak, indexViolations, wordCount } from "../src/format"
import { DEFAULT_RULES } from "../src/types"

const section = (id: string, texts: string[]) => ({
  id,
  bullets: texts.map((text, i) => ({ id: `${id}-${i}`, text })),
})

describe("wordCount", () => {
  it("counts runs of non-space characters", () => {
    expect(wordCount("")).toBe(0)
    expect(wordCount("   ")).toBe(0)
    expect(wordCount("Ensure access to basic services")).toBe(5)
    expect(wordCount("  two\twords \n")).toBe(2)
  })
  it("counts Arabic, Spanish and French words", () => {
    expect(wordCount("ضمان حصول المهاجرين على الخدمات")).toBe(5)
    expect(wordCount("Garantizar el acceso de los migrantes")).toBe(6)
    expect(wordCount("l'accès à l'éducation")).toBe(3)
  })
})

describe("duplicateKey", () => {
  it("folds case, collapses spaces and strips punctuation at the ends", () => {
    expect(duplicateKey("  Protect   migrant children.")).toBe(duplicateKey("protect migrant children"))
    expect(duplicateKey("« Protéger les enfants »")).toBe(duplicateKey("protéger les ENFANTS"))
    expect(duplicateKey("a, b")).not.toBe(duplicateKey("a b"))
  })
})

describe("checkOutcome", () => {
  it("passes a clean outcome", () => {
    expect(checkOutcome([section("s1", ["One proposal.", "Another proposal."])], DEFAULT_RULES)).toEqual([])
  })

  it("flags too many words with the count and the limit", () => {
    const long = Array.from({ length: 51 }, (_, i) => `w${i}`).join(" ")
    const v = checkOutcome([section("s1", [long])], DEFAULT_RULES)
    expect(v).toEqual([
      { rule: "maxWordsPerBullet", sectionId: "s1", bulletId: "s1-0", message: "51 words (limit 50)" },
    ])
  })

  it("flags too many bullets in a section at section level", () => {
    const texts = Array.from({ length: 11 }, (_, i) => `Proposal ${i}`)
    const v = checkOutcome([section("s1", texts)], DEFAULT_RULES)
    expect(v).toHaveLength(1)
    expect(v[0]).toMatchObject({ rule: "maxBulletsPerSection", bulletId: null, message: "11 bullets (limit 10)" })
  })

  it("flags empty bullets, line breaks and duplicates across sections", () => {
    const v = checkOutcome(
      [section("s1", ["  ", "First line\nsecond line", "Same idea."]), section("s2", ["same   IDEA"])],
      DEFAULT_RULES,
    )
    expect(v.map(x => [x.rule, x.bulletId])).toEqual([
      ["forbidEmpty", "s1-0"],
      ["singleParagraph", "s1-1"],
      ["forbidDuplicates", "s2-0"],
    ])
  })

  it("honours rules that are switched off", () => {
    const rules = { ...DEFAULT_RULES, forbidEmpty: false, singleParagraph: false, forbidDuplicates: false }
    expect(checkOutcome([section("s1", ["", "a\nb", "x", "x"])], rules)).toEqual([])
  })

  it("indexes violations by bullet and by section", () => {
    const texts = Array.from({ length: 11 }, () => "")
    const { byBullet, bySection } = indexViolations(checkOutcome([section("s1", texts)], DEFAULT_RULES))
    expect(bySection.get("s1")).toHaveLength(1)
    expect(byBullet.get("s1-3")?.[0]?.rule).toBe("forbidEmpty")
  })
})

describe("hasLineBreak", () => {
  it("sees newlines and paragraph separators", () => {
    expect(hasLineBreak("a\r\nb")).toBe(true)
    expect(hasLineBreak("a\u2029b")).toBe(true)
    expect(hasLineBreak("a b")).toBe(false)
  })
})

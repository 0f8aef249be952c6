// The pre-established format (schema.md "The pre-established format"): checks an outcome against
// the meeting's format rules. Pure; the editor runs it on every change, the server again on submit.
import type { FormatRules, OutcomeSection, Violation } from "./types"

/** Words are runs of non-space characters. */
export function wordCount(text: string): number {
  const trimmed = text.trim()
  return trimmed === "" ? 0 : trimmed.split(/\s+/u).length
}

/** True when the text holds a line or paragraph break. */
export function hasLineBreak(text: string): boolean {
  return /[\r\n\u2028\u2029\v\f]/u.test(text)
}

/**
 * The key two bullets are compared by for duplicates: case folded, runs of spaces collapsed,
 * spaces and punctuation at both ends removed.
 */
export function duplicateKey(text: string): string {
  return text
    .normalize("NFC")
    .toLocaleLowerCase()
    .replace(/\s+/gu, " ")
    .replace(/^[\s\p{P}]+|[\s\p{P}]+$/gu, "")
}

interface SectionLike {
  id: string
  bullets: readonly { id: string; text: string }[]
}

/** Every rule the outcome fails, in document order. */
export function checkOutcome(
  sections: readonly SectionLike[] | readonly OutcomeSection[],
  rules: FormatRules,
): Violation[] {
  const out: Violation[] = []
  const seen = new Map<string, string>()
  for (const section of sections as readonly SectionLike[]) {
    const bullets = section.bullets ?? []
    if (bullets.length > rules.maxBulletsPerSection) {
      out.push({
        rule: "maxBulletsPerSection",
        sectionId: section.id,
        bulletId: null,
        message: `${bullets.length} bullets (limit ${rules.maxBulletsPerSection})`,
      })
    }
    for (const bullet of bullets) {
      const text = String(bullet.text ?? "")
      const add = (rule: string, message: string) =>
        out.push({ rule, sectionId: section.id, bulletId: bullet.id, message })
      const blank = text.trim() === ""
      if (rules.forbidEmpty && blank) add("forbidEmpty", "Empty bullet")
      const words = wordCount(text)
      if (words > rules.maxWordsPerBullet) {
        add("maxWordsPerBullet", `${words} words (limit ${rules.maxWordsPerBullet})`)
      }
      if (rules.singleParagraph && hasLineBreak(text)) {
        add("singleParagraph", "Line break: one proposal in one paragraph")
      }
      if (rules.forbidDuplicates && !blank) {
        const key = duplicateKey(text)
        const first = seen.get(key)
        if (first !== undefined) add("forbidDuplicates", "Duplicate of another bullet")
        else seen.set(key, bullet.id)
      }
    }
  }
  return out
}

/** Violations grouped by bullet id (bullet-level) and by section id (section-level). */
export function indexViolations(violations: readonly Violation[]): {
  byBullet: Map<string, Violation[]>
  bySection: Map<string, Violation[]>
} {
  const byBullet = new Map<string, Violation[]>()
  const bySection = new Map<string, Violation[]>()
  for (const v of violations) {
    const map = v.bulletId === null ? bySection : byBullet
    const key = v.bulletId ?? v.sectionId
    const list = map.get(key)
    if (list) list.push(v)
    else map.set(key, [v])
  }
  return { byBullet, bySection }
}

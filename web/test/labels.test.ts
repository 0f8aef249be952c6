// Unit tests of the words that name authors and the summary's state.
import { describe, expect, it } from "vitest"
import { authorLabel, summaryStatus } from "../src/labels"

describe("authorLabel", () => {
  const people = {
    p1: { name: "Ana Ruiz", role: "rapporteur" as const, group: 1 },
    p2: { name: "Co-facilitator (Mexico)", role: "co-facilitator" as const, group: null },
  }
  it("names a person with their role and group", () => {
    expect(authorLabel("p1", people)).toBe("Ana Ruiz (rapporteur, group 1)")
    expect(authorLabel("p2", people)).toBe("Co-facilitator (Mexico) (co-facilitator)")
  })
  it("never shows an actor id", () => {
    expect(authorLabel("actor:0a1b2c3d4e5f", people)).toBe("an editor not on record")
  })
})

describe("summaryStatus", () => {
  it("follows sign-off step by step", () => {
    expect(summaryStatus(undefined)).toEqual({ state: "drafting", label: "Drafting", detail: "" })
    const approved = summaryStatus({ docUrl: "", state: "approved", revision: 1, approvedBy: ["Mexico"] })
    expect(approved.state).toBe("approved")
    expect(approved.label).toBe("Partly approved")
    expect(approved.detail).toContain("Approved by Mexico")
    expect(summaryStatus({ docUrl: "", state: "issued", revision: 1, approvedBy: ["Mexico", "Switzerland"] }).label).toBe(
      "Issued",
    )
    const revised = summaryStatus({ docUrl: "", state: "drafting", revision: 2, approvedBy: [] })
    expect(revised).toEqual({ state: "drafting", label: "Drafting", detail: "Revision 2." })
  })
})

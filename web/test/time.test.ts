// Unit tests of meeting-time conversion and slot status (America/Mexico_City, UTC-6 in December).
import { describe, expect, it } from "vitest"
import { describeSlot, formatDuration, slotStatus, zonedInstant } from "../src/time"

const TZ = "America/Mexico_City"
const slot = { date: "2017-12-05", start: "10:45", end: "13:00" }

describe("zonedInstant", () => {
  it("converts wall-clock time in the meeting zone", () => {
    expect(new Date(zonedInstant("2017-12-05", "10:45", TZ)).toISOString()).toBe("2017-12-05T16:45:00.000Z")
    expect(new Date(zonedInstant("2017-12-05", "10:45", "Europe/Zurich")).toISOString()).toBe(
      "2017-12-05T09:45:00.000Z",
    )
  })
})

describe("slotStatus", () => {
  it("is not started before the slot", () => {
    const s = slotStatus(slot, TZ, Date.parse("2017-12-05T16:00:00Z"))
    expect(s.state).toBe("not-started")
    expect(describeSlot(s)).toBe("Not started · starts in 45 min")
  })
  it("tells the time left while running", () => {
    const s = slotStatus(slot, TZ, Date.parse("2017-12-05T17:30:00Z"))
    expect(s.state).toBe("running")
    expect(describeSlot(s)).toBe("1 h 30 min left")
  })
  it("is ended after the slot", () => {
    expect(describeSlot(slotStatus(slot, TZ, Date.parse("2017-12-05T19:00:00Z")))).toBe("Ended")
  })
})

describe("formatDuration", () => {
  it("formats minutes, hours and days", () => {
    expect(formatDuration(59_000)).toBe("1 min")
    expect(formatDuration(65 * 60_000)).toBe("1 h 05 min")
    expect(formatDuration(50 * 3600_000)).toBe("2 d 2 h")
  })
})

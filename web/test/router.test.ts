// Unit tests of the app's routes.
import { describe, expect, it } from "vitest"
import { groupPath, parseRoute } from "../src/router"

describe("parseRoute", () => {
  it("reads the meeting pages", () => {
    expect(parseRoute("/")).toEqual({ page: "root" })
    expect(parseRoute("/m/gcm-stocktaking-2017")).toEqual({ page: "home", slug: "gcm-stocktaking-2017" })
    expect(parseRoute("/m/gcm/dashboard")).toEqual({ page: "dashboard", slug: "gcm" })
    expect(parseRoute(groupPath("gcm", 3))).toEqual({ page: "group", slug: "gcm", group: 3 })
  })
  it("refuses what it does not know", () => {
    expect(parseRoute("/m/gcm/groups/0").page).toBe("not-found")
    expect(parseRoute("/m/gcm/groups/x").page).toBe("not-found")
    expect(parseRoute("/elsewhere").page).toBe("not-found")
  })
})

// End to end: a change the server refuses does not linger. A rapporteur edits offline while the
// co-facilitators lock the group; on reconnect the server refuses the change, and the page says so
// and shows the server's version again.
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import { api, startServer } from "../lib/server.mjs"
import { SLUG, ensureWebBuilt, launchBrowser, signIn, until, waitConnection } from "./browser.mjs"

const GROUP = 2

describe("a refused change", () => {
  let server
  let browser
  let carla

  before(async () => {
    ensureWebBuilt()
    server = await startServer()
    browser = await launchBrowser()
    carla = await signIn(browser, server, "rapporteur", { group: GROUP, name: "Carla Rapporteur" })
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
    server?.cleanup()
  })

  it("is reported to the person and the page returns to the server's version", async () => {
    const { page, context } = carla
    await page.locator('[data-mode="edit"]').waitFor()
    await page.getByRole("button", { name: /Add bullet to “Actionable commitments”/ }).click()
    const area = page.locator('[data-section="commitments"] textarea[data-bullet]').first()
    await area.pressSequentially("Promote inclusion through language courses")
    await page.locator('[data-save="saved"]').waitFor()

    await context.setOffline(true)
    await waitConnection(page, "offline")
    await area.focus()
    await page.keyboard.press("End")
    await page.keyboard.type(" and mentoring")

    const cofac = server.invite("co-facilitator", { name: "Co-facilitator" })
    const locked = await api(server, cofac, "POST", `/api/meetings/${SLUG}/groups/${GROUP}/lock`)
    assert.equal(locked.status, 200)
    assert.equal(locked.body.state, "locked")

    await context.setOffline(false)
    await waitConnection(page, "online", 30_000)
    await page.getByTestId("refused").waitFor({ timeout: 30_000 })
    await page.locator('[data-mode="read"]').waitFor()
    await until(page, () =>
      document.querySelector('[data-testid="bullet-text"]')?.textContent === "Promote inclusion through language courses",
    )
    assert.equal(await page.locator("textarea").count(), 0)
  })
})

// Screenshots of every page at desktop (1280×800) and phone (360×740) width, written to
// docs/screenshots/ on each run so they stay current. The meeting gets sample content first; each
// page is captured once its live content is on screen.
import { after, before, describe, it } from "node:test"
import { api, startServer } from "../lib/server.mjs"
import { DESKTOP, PHONE, SLUG, ensureWebBuilt, launchBrowser, screenshot, signIn, until } from "./browser.mjs"
import { fillSample } from "./content.mjs"

describe("screenshots", () => {
  let server
  let browser
  let cofacToken

  before(async () => {
    ensureWebBuilt()
    server = await startServer()
    browser = await launchBrowser()
    cofacToken = server.invite("co-facilitator", { name: "Co-facilitator (Mexico)" })
    await fillSample(server, cofacToken)
    const submitted = await api(server, cofacToken, "POST", `/api/meetings/${SLUG}/groups/4/submit`, { override: false })
    if (submitted.status !== 200) throw new Error(`submit group 4: ${JSON.stringify(submitted)}`)
    await api(server, cofacToken, "POST", `/api/meetings/${SLUG}/groups/6/submit`, { override: false })
    await api(server, cofacToken, "POST", `/api/meetings/${SLUG}/groups/6/lock`)
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
    server?.cleanup()
  })

  for (const [label, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    it(`captures every page at ${label} width`, async () => {
      // no session
      const anon = await browser.newContext({ viewport })
      const gate = await anon.newPage()
      await gate.goto(server.url + "/")
      await gate.getByRole("heading", { name: "Open your invite link" }).waitFor()
      await screenshot(gate, `sign-in-${label}`)
      await anon.close()

      // meeting home, as a delegate
      const delegate = await signIn(browser, server, "delegate", { name: "Delegation of Chile", viewport })
      await delegate.page.locator('[data-group="4"] [data-state="submitted"]').waitFor()
      await until(delegate.page, () => document.querySelectorAll("[data-bullets]").length === 18)
      await screenshot(delegate.page, `meeting-home-${label}`)

      // a group followed read-only
      await delegate.page.goto(`${server.url}/m/${SLUG}/groups/3`)
      await delegate.page.locator('[data-mode="read"] [data-testid="bullet-text"]').first().waitFor()
      await delegate.page.getByTestId("presence").getByText("1 viewer").waitFor()
      await screenshot(delegate.page, `group-live-view-${label}`)
      await delegate.context.close()

      // the editor, with a second editor present on a bullet
      const ana = await signIn(browser, server, "rapporteur", { group: 1, name: "Ana Rapporteur", viewport })
      const bruno = await signIn(browser, server, "moderator", { group: 1, name: "Bruno Moderator" })
      await ana.page.locator('[data-mode="edit"] textarea[data-bullet]').first().waitFor()
      await bruno.page.locator("textarea[data-bullet]").nth(1).focus()
      await ana.page.getByTestId("peer-marks").first().waitFor()
      await ana.page.locator("textarea[data-bullet]").first().focus()
      await ana.page.locator('[data-save="saved"]').waitFor()
      await screenshot(ana.page, `group-editor-${label}`)
      await bruno.context.close()
      await ana.context.close()

      // the co-facilitators' dashboard
      const cofac = await signIn(browser, server, "co-facilitator", { name: "Co-facilitator (Switzerland)", viewport })
      await cofac.page.locator('[data-group="6"] [data-state="locked"]').waitFor()
      await until(cofac.page, () => document.querySelectorAll(".dash-draft li").length >= 18)
      await cofac.page.locator("tr[data-invite]").first().waitFor()
      await screenshot(cofac.page, `dashboard-${label}`)
      await cofac.context.close()
    })
  }
})

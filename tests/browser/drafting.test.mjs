// End to end in headless Chromium against the real server: two rapporteurs of group 1 type in the
// same bullet at once and converge; a delegate follows live without editing controls; an editor who
// goes offline keeps editing and merges on reconnect; format warnings block submission; the
// submission appears on another participant's meeting home.
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import { startServer } from "../lib/server.mjs"
import {
  SLUG,
  bulletValues,
  ensureWebBuilt,
  launchBrowser,
  readTexts,
  signIn,
  until,
  waitConnection,
} from "./browser.mjs"

const GROUP = 1
const SECTION = "commitments"

describe("live drafting of a group outcome", () => {
  let server
  let browser
  let ana
  let bruno
  let delegate

  before(async () => {
    ensureWebBuilt()
    server = await startServer()
    browser = await launchBrowser()
    ana = await signIn(browser, server, "rapporteur", { group: GROUP, name: "Ana Rapporteur" })
    bruno = await signIn(browser, server, "moderator", { group: GROUP, name: "Bruno Moderator" })
    delegate = await signIn(browser, server, "delegate", { name: "Delegation of Chile" })
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
    server?.cleanup()
  })

  it("lands each person on their page", async () => {
    assert.equal(new URL(ana.page.url()).pathname, `/m/${SLUG}/groups/${GROUP}`)
    assert.equal(new URL(delegate.page.url()).pathname, `/m/${SLUG}`)
    await ana.page.locator('[data-mode="edit"]').waitFor()
    await bruno.page.locator('[data-mode="edit"]').waitFor()
  })

  it("two editors typing in one bullet at once both keep their words", async () => {
    const { page: a } = ana
    const { page: b } = bruno
    await a.getByRole("button", { name: /Add bullet to “Actionable commitments”/ }).click()
    const areaA = a.locator(`[data-section="${SECTION}"] textarea[data-bullet]`).first()
    await areaA.waitFor()
    await areaA.pressSequentially("Ensure access to basic services")
    const areaB = b.locator(`[data-section="${SECTION}"] textarea[data-bullet]`).first()
    await until(b, () => document.querySelector("textarea[data-bullet]")?.value === "Ensure access to basic services")

    // Ana types at the end while Bruno types at the start, concurrently
    await areaA.focus()
    await a.keyboard.press("End")
    await areaB.focus()
    await b.keyboard.press("Home")
    // both see the other's presence on the bullet
    await a.getByTestId("peer-marks").getByText("Bruno Moderator is editing").waitFor()
    await Promise.all([
      areaA.pressSequentially(" for all migrants", { delay: 15 }),
      areaB.pressSequentially("Commit to: ", { delay: 15 }),
    ])
    const expected = "Commit to: Ensure access to basic services for all migrants"
    for (const page of [a, b]) {
      await until(page, want => document.querySelector("textarea[data-bullet]")?.value === want, expected)
    }
    // each caret stayed where its owner was typing
    const caretA = await areaA.evaluate(t => [t.selectionStart, t.value.length])
    assert.equal(caretA[0], caretA[1], "Ana's caret is still at the end")
    const caretB = await areaB.evaluate(t => t.selectionStart)
    assert.equal(caretB, "Commit to: ".length, "Bruno's caret is still after his words")
  })

  it("a delegate sees the text live and has no editing controls", async () => {
    const { page: d } = delegate
    await d.goto(`${server.url}/m/${SLUG}/groups/${GROUP}`)
    await d.locator('[data-mode="read"]').waitFor()
    await until(d, () => document.querySelector('[data-testid="bullet-text"]')?.textContent?.includes("for all migrants"))
    assert.equal(await d.locator("textarea").count(), 0)
    assert.equal(await d.getByRole("button", { name: /Add bullet|Submit|Move|Delete/ }).count(), 0)
    // a new edit appears without reload
    const areaA = ana.page.locator(`[data-section="${SECTION}"] textarea[data-bullet]`).first()
    await areaA.focus()
    await ana.page.keyboard.press("End")
    await areaA.pressSequentially(" and decent work")
    await until(d, () => document.querySelector('[data-testid="bullet-text"]')?.textContent?.endsWith("and decent work"))
  })

  it("an editor who goes offline keeps editing and merges on reconnect", async () => {
    const { page: a, context: ctxA } = ana
    const { page: b } = bruno
    await ctxA.setOffline(true)
    await waitConnection(a, "offline")
    // Ana adds a bullet offline (Enter adds a bullet below the current one)
    const first = a.locator(`[data-section="${SECTION}"] textarea[data-bullet]`).first()
    await first.focus()
    await a.keyboard.press("End")
    await a.keyboard.press("Enter")
    await until(a, () => document.querySelectorAll('[data-section="commitments"] textarea[data-bullet]').length === 2)
    await a.keyboard.type("Establish firewalls between immigration enforcement and public services")
    await a.locator('[data-save="local"]').waitFor()
    // meanwhile Bruno edits the first bullet online
    const firstB = b.locator(`[data-section="${SECTION}"] textarea[data-bullet]`).first()
    await firstB.focus()
    await b.keyboard.press("End")
    await firstB.pressSequentially(", regardless of status")
    await ctxA.setOffline(false)
    await waitConnection(a, "online", 30_000)
    const want = [
      "Commit to: Ensure access to basic services for all migrants and decent work, regardless of status",
      "Establish firewalls between immigration enforcement and public services",
    ]
    for (const page of [a, b]) {
      await until(
        page,
        want => {
          const v = [...document.querySelectorAll('[data-section="commitments"] textarea[data-bullet]')].map(t => t.value)
          return JSON.stringify(v) === JSON.stringify(want)
        },
        want,
        30_000,
      )
    }
    await a.locator('[data-save="saved"]').waitFor({ timeout: 15_000 })
    await until(delegate.page, n => document.querySelectorAll('[data-testid="bullet-text"]').length === n, 2)
    assert.deepEqual(await readTexts(delegate.page, SECTION), want)
  })

  it("keyboard: Backspace on an empty bullet removes it, arrows move between bullets", async () => {
    const { page: a } = ana
    const second = a.locator(`[data-section="${SECTION}"] textarea[data-bullet]`).nth(1)
    await second.focus()
    await a.keyboard.press("End")
    await a.keyboard.press("Enter")
    await until(a, () => document.querySelectorAll('[data-section="commitments"] textarea[data-bullet]').length === 3)
    await a.keyboard.press("Backspace")
    await until(a, () => document.querySelectorAll('[data-section="commitments"] textarea[data-bullet]').length === 2)
    // focus went back to the end of the bullet above; ArrowUp at its start moves to the first
    assert.equal(await second.evaluate(t => document.activeElement === t), true)
    await a.keyboard.press("Home")
    await second.evaluate(t => t.setSelectionRange(0, 0))
    await a.keyboard.press("ArrowUp")
    const first = a.locator(`[data-section="${SECTION}"] textarea[data-bullet]`).first()
    assert.equal(await first.evaluate(t => document.activeElement === t), true)
  })

  it("format warnings show live and block submission until fixed; the submission shows on the meeting home", async () => {
    const { page: a } = ana
    assert.equal(await a.getByTestId("refused").count(), 0, "no change was refused so far")
    const section = a.locator(`[data-section="implementation"]`)
    await a.getByRole("button", { name: /Add bullet to “Means of implementation/ }).click()
    const area = section.locator("textarea[data-bullet]").first()
    await area.waitFor()
    const long = Array.from({ length: 52 }, (_, i) => `word${i}`).join(" ")
    await area.fill(long)
    await section.locator('.warning[data-rule="maxWordsPerBullet"]').getByText("52 words (limit 50)").waitFor()
    await a.getByTestId("checks").waitFor()
    assert.equal(await a.getByTestId("submit").isDisabled(), true, "submit is blocked")
    // an empty bullet is flagged too
    await a.keyboard.press("End")
    await a.keyboard.press("Enter")
    await section.locator('.warning[data-rule="forbidEmpty"]').waitFor()
    await a.keyboard.type("Scale up capacity building for local authorities")
    await area.fill("Mobilise financing for programmes of local integration")
    await a.getByTestId("checks-ok").waitFor()
    await a.locator('[data-save="saved"]').waitFor()
    const submit = a.getByTestId("submit")
    await until(a, () => !document.querySelector('[data-testid="submit"]')?.disabled)
    await submit.click()
    await a.getByTestId("submit-result").getByText("Submitted as version 1").waitFor()

    // a fourth person sees the submission on the meeting home, live
    const observer = await signIn(browser, server, "observer", { name: "IOM observer" })
    const card = observer.page.locator(`[data-group="${GROUP}"]`)
    await card.locator('[data-state="submitted"]').waitFor()
    await card.getByTestId("last-submission").getByText(/Submitted v1 .* by Ana Rapporteur/).waitFor()
    await card.locator('[data-section="implementation"] [data-bullets]').getByText("2").waitFor()

    // a late edit shows as such and can be resubmitted
    await area.focus()
    await a.keyboard.press("End")
    await a.keyboard.type(" and regional development banks")
    await a.getByTestId("edited-since").getByText("Edited since submission v1").waitFor()
    await a.locator('[data-save="saved"]').waitFor()
    await until(a, () => !document.querySelector('[data-testid="submit"]')?.disabled)
    await a.getByRole("button", { name: "Resubmit outcome" }).click()
    await a.getByTestId("submit-result").getByText("Submitted as version 2").waitFor()
    await card.getByTestId("last-submission").getByText(/Submitted v2/).waitFor()
    await observer.context.close()
  })

  it("raised no page errors and refused no change", async () => {
    assert.deepEqual([...ana.errors, ...bruno.errors, ...delegate.errors].map(String), [])
    for (const { page } of [ana, bruno]) {
      const refused = page.getByTestId("refused")
      const count = await refused.count()
      assert.equal(count, 0, count ? `${await refused.textContent()}\n${[...ana.warnings, ...bruno.warnings].join("\n")}` : "")
    }
  })
})

// The co-facilitators' flow on the chair's summary in headless Chromium against the real server:
// merge the submitted outcomes, resolve an item whose source changed after a resubmission,
// consolidate a proposed cluster, add a thematic section and move an item into it, compare a
// group's versions (the changes named by their authors' names and roles, a rapporteur typing in
// the web app among them), approve (one co-facilitator: the meeting home and the dashboard say
// so; both: the summary is issued), and download the DOCX — read back by LibreOffice when it is
// installed (.ci/run installs it). A delegate follows the summary live and read-only on a phone.
// Screenshots of the summary page go to docs/screenshots/.
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { after, before, describe, it } from "node:test"
import { ImmutableString, Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { api, startServer, waitFor } from "../lib/server.mjs"
import { PHONE, SLUG, ensureWebBuilt, launchBrowser, screenshot, signIn, until } from "./browser.mjs"
import { fillSample } from "./content.mjs"

const TWIN = "Ensure access to basic services for migrants regardless of their migration status, including health care."

/** Runs `fn(doc)` as a change of group `n`'s outcome and waits until the server has it. */
async function changeGroup(server, token, n, fn) {
  const meeting = (await api(server, token, "GET", `/api/meetings/${SLUG}`)).body
  const url = meeting.groups.find(g => g.number === n).outcomeDocUrl
  const repo = new Repo({ network: [new WebSocketClientAdapter(`${server.wsUrl}?token=${token}`)] })
  try {
    const handle = await repo.find(url)
    handle.change(fn)
    const want = JSON.stringify(handle.doc().sections)
    const reader = new Repo({ network: [new WebSocketClientAdapter(`${server.wsUrl}?token=${token}`)] })
    try {
      const h = await reader.find(url)
      await waitFor(() => JSON.stringify(h.doc().sections) === want, { timeout: 15_000, what: `group ${n} on the server` })
    } finally {
      await reader.shutdown()
    }
  } finally {
    await repo.shutdown()
  }
}

/** How many items the summary has, from the REST API. */
async function itemCount(server, token) {
  const s = (await api(server, token, "GET", `/api/meetings/${SLUG}/summary`)).body
  return s.document.sections.reduce((n, sec) => n + sec.items.length, 0)
}

async function submit(server, token, n) {
  const r = await api(server, token, "POST", `/api/meetings/${SLUG}/groups/${n}/submit`, { override: true })
  assert.equal(r.status, 200, JSON.stringify(r.body))
}

describe("the chair's summary", () => {
  let server
  let browser
  let writer
  let mexico
  let switzerland
  let delegate

  before(async () => {
    ensureWebBuilt()
    server = await startServer()
    browser = await launchBrowser()
    writer = server.invite("co-facilitator", { name: "Content writer" })
    await fillSample(server, writer)
    const me = (await api(server, writer, "GET", "/api/me")).body.person
    await changeGroup(server, writer, 2, doc => {
      doc.sections[0].bullets.push({
        id: new ImmutableString(randomUUID()),
        text: TWIN,
        proposedBy: [new ImmutableString("Ecuador")],
        tags: [new ImmutableString("gcm-objective-15")],
        status: new ImmutableString("proposed"),
        createdBy: new ImmutableString(me.id),
        createdAt: Date.now(),
      })
    })
    for (const n of [1, 2, 3]) await submit(server, writer, n)
    mexico = await signIn(browser, server, "co-facilitator", { name: "Co-facilitator (Mexico)" })
    switzerland = await signIn(browser, server, "co-facilitator", { name: "Co-facilitator (Switzerland)" })
    delegate = await signIn(browser, server, "delegate", { name: "Delegation of Chile", viewport: PHONE })
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
    server?.cleanup()
  })

  it("is linked from the dashboard and the meeting home", async () => {
    await mexico.page.getByTestId("summary-link").first().click()
    await mexico.page.locator(".summary-page").waitFor()
    assert.equal(new URL(mexico.page.url()).pathname, `/m/${SLUG}/summary`)
    await delegate.page.getByTestId("summary-link").click()
    await delegate.page.locator(".summary-page").waitFor()
    await switzerland.page.goto(`${server.url}/m/${SLUG}/summary`)
    await switzerland.page.locator(".summary-page").waitFor()
  })

  it("merges the submissions, live for everyone", async () => {
    const { page } = mexico
    await page.getByRole("button", { name: "Merge submissions" }).click()
    await page.getByTestId("summary-message").getByText(/Merged: 12 new/).waitFor()
    assert.equal(await itemCount(server, writer), 12)
    for (const p of [page, switzerland.page, delegate.page]) {
      await until(p, () => document.querySelectorAll("[data-item-id]").length === 12)
    }
    // The delegate reads; co-facilitators edit.
    assert.equal(await delegate.page.locator("textarea").count(), 0)
    assert.equal(await switzerland.page.locator("textarea[data-item]").count(), 12)
    // Group 3's Arabic bullet reads right to left, for those who edit it and those who read it.
    const directions = (p, selector) =>
      p.$$eval(selector, els => els
        .filter(e => /^[\u0600-\u06FF]/.test(e.value ?? e.textContent))
        .map(e => (e.matches(":dir(rtl)") ? "rtl" : "ltr")))
    assert.deepEqual(await directions(switzerland.page, "textarea[data-item]"), ["rtl"])
    assert.deepEqual(await directions(delegate.page, "[data-item-id] .summary-para"), ["rtl"])
    // Provenance is one click away.
    const first = page.locator('[data-section="group-1"] [data-item-id]').first()
    await first.getByTestId("provenance").click()
    await first.getByTestId("sources").getByText("Group 1").waitFor()
  })

  it("two co-facilitators type in one item at once and both keep their words", async () => {
    const sel = '[data-section="group-3"] textarea[data-item]'
    const a = mexico.page.locator(sel).first()
    const b = switzerland.page.locator(sel).first()
    const original = await a.inputValue()
    await a.click()
    await a.press("End")
    await b.click()
    await b.press("Home")
    await Promise.all([a.pressSequentially(" (as amended)"), b.pressSequentially("Welcome: ")])
    const want = `Welcome: ${original} (as amended)`
    for (const p of [mexico.page, switzerland.page]) {
      await until(p, ([s, w]) => document.querySelector(s)?.value === w, [sel, want])
    }
    await until(delegate.page, w => document.body.textContent.includes(w), want)
  })

  it("flags an item whose source changed and takes the source's text in one action", async () => {
    const NEW = "Ensure access to basic services for all migrants, regardless of status, including justice."
    await changeGroup(server, writer, 1, doc => {
      doc.sections[0].bullets[0].text = NEW
    })
    await submit(server, writer, 1)
    const { page } = mexico
    await page.getByRole("button", { name: "Merge submissions" }).click()
    await page.getByTestId("summary-message").getByText(/1 changed at the source/).waitFor()
    const item = page.locator("[data-item-id]", { has: page.getByTestId("stale") })
    await item.getByText(NEW).waitFor()
    await item.getByRole("button", { name: "Take source" }).click()
    await until(page, text => [...document.querySelectorAll("textarea[data-item]")].some(t => t.value === text), NEW)
    assert.equal(await page.getByTestId("stale").count(), 0)
    await until(delegate.page, text => document.body.textContent.includes(text), NEW)
  })

  it("consolidates a proposed cluster into one item citing both groups", async () => {
    const { page } = mexico
    const cluster = page.getByTestId("clusters").locator("[data-cluster]", { hasText: TWIN })
    await cluster.waitFor()
    const size = await cluster.locator("li").count()
    assert.ok(size >= 2)
    await screenshot(page, "summary-desktop")
    await cluster.getByRole("button", { name: "Merge into one item" }).click()
    await page.getByTestId("summary-message").getByText(/Merged into one item/).waitFor()
    const left = 12 - size + 1
    await until(page, n => document.querySelectorAll("[data-item-id]").length === n, left)
    assert.equal(await itemCount(server, writer), left)
    await page.getByText(`Sources (${size})`).first().waitFor()
    // Every source bullet answers "where did it go": group 2's twin links to the merged item.
    const mergedId = await page.evaluate(n => {
      const li = [...document.querySelectorAll("[data-item-id]")].find(el => el.textContent.includes(`Sources (${n})`))
      return li?.getAttribute("data-item-id")
    }, size)
    await switzerland.page.goto(`${server.url}/m/${SLUG}/groups/2`)
    const link = switzerland.page.locator(`[data-testid="went-into"][href$="#item-${mergedId}"]`)
    await link.first().waitFor()
    await link.first().click()
    await switzerland.page.locator(`#item-${mergedId}`).waitFor()
    await screenshot(delegate.page, "summary-phone")
  })

  it("adds a thematic section, moves an item into it and removes it once empty, live for everyone", async () => {
    const { page } = mexico
    const theme = '[data-section^="theme-"]'
    const form = page.getByTestId("add-section")
    await form.getByLabel("New section title").fill("Remittances")
    await form.getByRole("button", { name: "Add a section" }).click()
    await page.locator(`${theme} .section-title-input`).waitFor()
    assert.equal(await page.locator(`${theme} .section-title-input`).inputValue(), "Remittances")
    await delegate.page.locator(`${theme} h2`, { hasText: "Remittances" }).waitFor()

    // Renamed by the other co-facilitator.
    const title = switzerland.page.locator(`${theme} .section-title-input`)
    await title.fill("Remittances and financial inclusion")
    await title.press("Enter")
    await delegate.page.locator(`${theme} h2`, { hasText: "Remittances and financial inclusion" }).waitFor()

    // An item of group 1 moves in, provenance and all.
    const group1 = '[data-section="group-1"]'
    const before = await page.locator(`${group1} [data-item-id]`).count()
    const item = page.locator(`${group1} [data-item-id]`).first()
    const itemId = await item.getAttribute("data-item-id")
    await item.getByLabel("Move to section").selectOption({ label: "Remittances and financial inclusion" })
    for (const p of [page, switzerland.page, delegate.page]) {
      await p.locator(`${theme} [data-item-id="${itemId}"]`).waitFor()
    }
    assert.equal(await page.locator(`${group1} [data-item-id]`).count(), before - 1)
    await page.locator(`${theme} [data-item-id="${itemId}"]`).getByTestId("provenance").click()
    await page.locator(`${theme} [data-item-id="${itemId}"]`).getByTestId("sources").getByText("Group 1").waitFor()
    assert.equal(await page.locator(theme).getByRole("button", { name: "Remove section" }).count(), 0)
    await screenshot(page, "summary-sections-desktop")

    // Back to its group's section; the emptied thematic section goes, for everyone.
    const groupTitle = await page.locator(`${group1} .section-title-input`).inputValue()
    await page.locator(`${theme} [data-item-id="${itemId}"]`).getByLabel("Move to section").selectOption({ label: groupTitle })
    await page.locator(`${group1} [data-item-id="${itemId}"]`).waitFor()
    await page.locator(theme).getByRole("button", { name: "Remove section" }).click()
    for (const p of [page, switzerland.page, delegate.page]) {
      await until(p, sel => document.querySelectorAll(sel).length === 0, theme)
    }
    assert.equal(await itemCount(server, writer), await page.locator("[data-item-id]").count())
  })

  it("names who changed a group's outcome since its report-back, a rapporteur typing among them", async () => {
    const ana = await signIn(browser, server, "rapporteur", { group: 1, name: "Ana Rapporteur" })
    try {
      const area = ana.page.locator('[data-mode="edit"] textarea[data-bullet]').first()
      await area.waitFor()
      await area.click()
      await area.press("End")
      await area.pressSequentially(" and legal aid")
      await ana.page.locator('[data-save="saved"]').waitFor()
      await mexico.page.getByRole("button", { name: "Group 1 since v1" }).click()
      const diff = mexico.page.getByTestId("diff")
      await diff.getByText(/Ana Rapporteur \(rapporteur, group 1\)/).waitFor()
      await diff.getByText(/Content writer \(co-facilitator\)/).first().waitFor()
      const text = await diff.textContent()
      assert.ok(!/actor:|not on record/.test(text), text)
      await screenshot(mexico.page, "summary-versions-desktop")
    } finally {
      await ana.context.close()
    }
  })

  it("is issued when both co-facilitators approve, and downloads as DOCX", async () => {
    // Only the two co-facilitators signed in here count: revoke the others.
    const invites = (await api(server, mexico.token, "GET", `/api/meetings/${SLUG}/invites`)).body
    for (const inv of invites) {
      if (inv.role === "co-facilitator" && !/Mexico|Switzerland/.test(inv.name ?? "")) {
        assert.equal((await api(server, mexico.token, "DELETE", `/api/invites/${inv.id}`)).status, 204)
      }
    }
    // The meeting home (the delegate) and the dashboard follow sign-off live.
    await delegate.page.goto(`${server.url}/m/${SLUG}`)
    await delegate.page.getByTestId("summary").locator('[data-summary-state="drafting"]').waitFor()
    const dashboard = await mexico.context.newPage()
    await dashboard.goto(`${server.url}/m/${SLUG}/dashboard`)
    await dashboard.locator('[data-summary-state="drafting"]').waitFor()
    await mexico.page.getByTestId("signoff").getByRole("button", { name: "Approve" }).click()
    await mexico.page.getByTestId("summary-message").getByText("Approved.").waitFor()
    for (const p of [delegate.page, dashboard]) {
      await p.locator('[data-summary-state="approved"]').waitFor()
      await p.getByTestId("summary-status").getByText(/Approved by Co-facilitator \(Mexico\)/).waitFor()
    }
    await screenshot(delegate.page, "meeting-home-approved-phone")
    await switzerland.page.getByTestId("signoff").getByText(/Approved by: Co-facilitator \(Mexico\)/).waitFor()
    await switzerland.page.getByTestId("signoff").getByRole("button", { name: "Approve" }).click()
    for (const p of [mexico.page, switzerland.page, delegate.page, dashboard]) {
      await p.locator('[data-summary-state="issued"]').first().waitFor()
    }
    await dashboard.close()
    assert.equal(await mexico.page.locator("textarea").count(), 0, "issued: nothing editable")

    const [download] = await Promise.all([
      mexico.page.waitForEvent("download"),
      mexico.page.locator('[data-export="docx"]').click(),
    ])
    const dir = mkdtempSync(path.join(tmpdir(), "rapporteur-docx-"))
    try {
      const file = path.join(dir, "chair-summary.docx")
      await download.saveAs(file)
      const bytes = readFileSync(file)
      assert.equal(bytes.subarray(0, 2).toString(), "PK")
      let soffice = true
      try {
        execFileSync("soffice", ["--version"], { stdio: "ignore" })
      } catch {
        soffice = false
      }
      if (soffice) {
        execFileSync("soffice", [
          `-env:UserInstallation=file://${dir}/profile`, "--headless", "--convert-to", "txt:Text", "--outdir", dir, file,
        ], { stdio: "ignore" })
        const text = readFileSync(path.join(dir, "chair-summary.txt"), "utf8")
        assert.match(text, /Original: English/)
        assert.match(text, /^1\.\t/m)
        const items = await itemCount(server, mexico.token)
        assert.match(text, new RegExp(`^${items}\\.\\t`, "m"))
        assert.match(text, /Annex/)
        assert.match(text, /including justice/)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

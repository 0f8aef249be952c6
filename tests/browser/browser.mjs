// Shared pieces of the browser end-to-end tests: the built web app, headless Chromium (Debian's,
// driven by playwright-core), one browser context per person signed in through a real invite link,
// and screenshots written to docs/screenshots/.
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync } from "node:fs"
import path from "node:path"
import { chromium } from "playwright-core"
import { repoRoot } from "../lib/server.mjs"

export const SLUG = "gcm-stocktaking-2017"
export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 360, height: 740 }
export const screenshotDir = path.join(repoRoot, "docs", "screenshots")

/** Builds web/dist when it is missing, so the server has a page to serve. */
export function ensureWebBuilt() {
  const web = path.join(repoRoot, "web")
  if (existsSync(path.join(web, "dist", "index.html"))) return
  if (!existsSync(path.join(web, "node_modules"))) execFileSync("npm", ["ci"], { cwd: web, stdio: "inherit" })
  execFileSync("npm", ["run", "build"], { cwd: web, stdio: "inherit" })
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
    ],
  })
}

/**
 * A browser context for one person: mints an invite with the CLI, opens the /join link (which sets
 * the session cookie and redirects to the person's page) and waits for the app to show the person.
 */
export async function signIn(browser, server, role, { group, name, viewport = DESKTOP } = {}) {
  const token = server.invite(role, { group, name })
  const context = await browser.newContext({ viewport, locale: "en-GB" })
  const page = await context.newPage()
  const errors = []
  page.on("pageerror", err => errors.push(err))
  const warnings = []
  page.on("console", msg => {
    if (msg.type() === "warning") warnings.push(msg.text())
  })
  await page.goto(`${server.url}/join/${token}`)
  await page.getByTestId("whoami").getByText(name ?? role, { exact: false }).first().waitFor({ timeout: 15_000 })
  return { context, page, token, errors, warnings }
}

/** Waits until the connection indicator shows `state` (online | connecting | offline). */
export async function waitConnection(page, state, timeout = 15_000) {
  await page.locator(`[data-connection="${state}"]`).waitFor({ timeout })
}

/** The values of the bullet textareas of a section, in order. */
export function bulletValues(page, sectionId) {
  return page.$$eval(`[data-section="${sectionId}"] textarea[data-bullet]`, areas => areas.map(a => a.value))
}

/** The texts of the read-only bullets of a section, in order. */
export function readTexts(page, sectionId) {
  return page.$$eval(`[data-section="${sectionId}"] [data-testid="bullet-text"]`, ps => ps.map(p => p.textContent))
}

/** Waits until `fn(arg)` is truthy in the page. */
export function until(page, fn, arg, timeout = 15_000) {
  return page.waitForFunction(fn, arg, { timeout, polling: 50 })
}

export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true })
  await page.evaluate(() => document.fonts?.ready)
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true })
  // Nothing may stick out sideways: a page wider than the screen scrolls both ways on a phone.
  const { width } = page.viewportSize()
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth)
  if (scrollWidth > width) throw new Error(`${name}: the page is ${scrollWidth} px wide in a ${width} px window`)
}

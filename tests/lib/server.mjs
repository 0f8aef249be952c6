// Starts the real `rapporteur` binary for end-to-end tests: a fresh SQLite file in a temporary
// directory, an ephemeral port, and helpers to mint invites through the CLI against the same
// database while the server runs.
import { spawn, execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, "..", "..")
export const binary =
  process.env.RAPPORTEUR_BIN ?? path.join(repoRoot, "target", "debug", "rapporteur")
export const DEMO_SLUG = "gcm-stocktaking-2017"

/**
 * Starts a server. `dir` may be given to restart on the same database after `kill()`;
 * `databaseUrl` selects another database (several nodes on one PostgreSQL database).
 * Resolves once the server printed its listening address.
 */
export async function startServer({ dir, port = 0, env = {}, databaseUrl } = {}) {
  dir ??= mkdtempSync(path.join(tmpdir(), "rapporteur-test-"))
  databaseUrl ??= `sqlite://${path.join(dir, "rapporteur.db")}`
  const args = [
    "serve",
    "--bind", `127.0.0.1:${port}`,
    "--database-url", databaseUrl,
    "--web-dir", path.join(repoRoot, "web", "dist"),
  ]
  const child = spawn(binary, args, {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let stderr = ""
  child.stderr.on("data", chunk => {
    stderr += chunk
    if (process.env.RAPPORTEUR_TEST_LOG) process.stderr.write(chunk)
  })
  const lines = []
  const url = await new Promise((resolve, reject) => {
    let buffered = ""
    const timer = setTimeout(
      () => reject(new Error(`server did not start in 20 s:\n${stderr}`)),
      20_000,
    )
    child.stdout.on("data", chunk => {
      buffered += chunk
      let nl
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        lines.push(line)
        const m = line.match(/listening on (http:\/\/\S+)/)
        if (m) {
          clearTimeout(timer)
          resolve(m[1])
        }
      }
    })
    child.on("exit", code => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening:\n${stderr}`))
    })
  })
  const exited = new Promise(resolve => child.on("exit", (code, signal) => resolve({ code, signal })))
  return {
    url,
    wsUrl: url.replace(/^http/, "ws") + "/sync",
    dir,
    databaseUrl,
    lines,
    child,
    /** Mints an invite with the CLI and returns its token. */
    invite(role, { group, name, meeting = DEMO_SLUG } = {}) {
      return inviteToken(databaseUrl, { role, group, name, meeting })
    },
    /** SIGKILL: no chance to flush anything. */
    async kill() {
      child.kill("SIGKILL")
      await exited
    },
    /** SIGTERM: graceful shutdown. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      return exited
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Runs `rapporteur invite` and returns the token of the printed `/join/<token>` URL. */
export function inviteToken(databaseUrl, { role, group, name, meeting = DEMO_SLUG }) {
  const args = ["invite", "--database-url", databaseUrl, "--meeting", meeting, "--role", role]
  if (group !== undefined) args.push("--group", String(group))
  if (name !== undefined) args.push("--name", name)
  const out = execFileSync(binary, args, { encoding: "utf8" })
  const m = out.match(/\/join\/([A-Za-z0-9_-]+)/)
  if (!m) throw new Error(`no invite URL in: ${out}`)
  return m[1]
}

/** Calls the REST API with a bearer token; returns { status, body }. */
export async function api(server, token, method, pathname, body) {
  const res = await fetch(server.url + pathname, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  let parsed
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {
    parsed = text
  }
  return { status: res.status, body: parsed }
}

/** Polls `check` until it returns a truthy value or the timeout passes. */
export async function waitFor(check, { timeout = 10_000, interval = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, interval))
  }
}

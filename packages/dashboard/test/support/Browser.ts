/**
 * Headless Chromium for the dashboard's browser tests: Debian's
 * `/usr/bin/chromium` driven by playwright-core (which never downloads a
 * browser of its own), started with a fresh profile and the flags this
 * machine's closed network needs. A missing Chromium skips the browser
 * tests with a warning on a developer's machine and fails them loudly in CI.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { BrowserContext, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { describe, it } from "vitest"

/** The browser binary (override with ORCHESTRA_CHROMIUM). */
export const executablePath = process.env["ORCHESTRA_CHROMIUM"] ?? "/usr/bin/chromium"

/** Flags: headless, no sandbox (root), and no background traffic to hosts this machine cannot reach. */
export const flags: ReadonlyArray<string> = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

export const available = (): boolean => fs.existsSync(executablePath)

const inCi = (): boolean => {
  const ci = process.env["CI"]
  return ci !== undefined && ci !== "" && ci !== "0" && ci.toLowerCase() !== "false"
}

/**
 * `describe` for tests that need Chromium. Without it: in CI one failing
 * test says what is missing; elsewhere the block is skipped with a warning.
 */
export const describeWithChromium = (name: string, body: () => void): void => {
  if (available()) {
    describe(name, body)
    return
  }
  const message = `${executablePath} not found: the dashboard's browser tests need Debian's chromium (apt-get install -y chromium)`
  if (inCi()) {
    describe(name, () => {
      it("has Chromium to run in", () => {
        throw new Error(`CI=true and ${message}`)
      })
    })
  } else {
    console.warn(`\n*** SKIPPED: ${message} ***\n`)
    describe.skip(name, body)
  }
}

export interface Chromium {
  readonly context: BrowserContext
  readonly page: Page
  readonly userDataDir: string
  /** Browser console messages and page errors, for assertions and failure reports. */
  readonly console: Array<string>
  readonly close: () => Promise<void>
}

/** Pids of processes whose command line mentions `needle` (our own profile directory). */
const pidsMentioning = (needle: string): Array<number> => {
  const out: Array<number> = []
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8")
      if (cmdline.includes(needle)) out.push(Number(entry))
    } catch {
      // gone, or not ours to read
    }
  }
  return out
}

/** Start Chromium with a new empty profile; `close` stops it and removes the profile. */
export const launch = async (): Promise<Chromium> => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-chromium-"))
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [...flags],
    viewport: { width: 1440, height: 960 },
    timeout: 60_000
  })
  const consoleLines: Array<string> = []
  context.setDefaultTimeout(15_000)
  const page = context.pages()[0] ?? (await context.newPage())
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`))
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`))
  return {
    context,
    page,
    userDataDir,
    console: consoleLines,
    close: async () => {
      await context.close().catch(() => undefined)
      // Whatever is left of this browser (found by its own profile path) is killed by pid.
      for (const pid of pidsMentioning(userDataDir)) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // already gone
        }
      }
      fs.rmSync(userDataDir, { recursive: true, force: true })
    }
  }
}

/** Where the tests keep screenshots (gitignored): `<repo>/test-artifacts/dashboard/`. */
export const artifactsDir = (): string => {
  const dir = path.resolve(new URL("../../../../test-artifacts/dashboard/", import.meta.url).pathname)
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

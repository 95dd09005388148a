/**
 * Test fixtures: temporary score and state directories, score scripts, and
 * cleanup of every process a test started (by pid).
 */
import { Names, Protocol } from "@orchestra/core"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const dirs: Array<string> = []
const pids: Array<number> = []

/** A fresh temporary directory, removed by `cleanup`. */
export const tempDir = (prefix: string): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `orc-player-${prefix}-`))
  dirs.push(d)
  return d
}

/** Remember a pid to kill (its process group too) in `cleanup`. */
export const track = (pid: number): number => {
  pids.push(pid)
  return pid
}

/** Kill pids recorded in files (one pid per file) by the scores of a test. */
export const trackPidFiles = (dir: string): void => {
  if (!fs.existsSync(dir)) return
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith(".pid")) continue
    const pid = Number(fs.readFileSync(path.join(dir, f), "utf8").trim())
    if (Number.isInteger(pid) && pid > 1) pids.push(pid)
  }
}

export const alive = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

export const cleanup = (): void => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(-pid, "SIGKILL")
    } catch {
      // not a group leader, or gone
    }
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone
    }
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
}

/** Write an executable `/bin/sh` score and, optionally, its YAML manifest. */
export const writeScore = (dir: string, name: string, body: string, manifest?: string): string => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 })
  if (manifest !== undefined) fs.writeFileSync(path.join(dir, `${name}.yaml`), `name: ${name}\n${manifest}\n`)
  return file
}

let jobCounter = 1
/** A unique task ref. */
export const ref = (key = "0", attempt = 1, job?: number): Names.TaskRef => ({
  job: Names.jobId(job ?? jobCounter++),
  key: Names.taskKey(key),
  attempt
})

export const assignment = (
  score: string,
  params: Protocol.Assignment["params"] = {},
  extra: { readonly ref?: Names.TaskRef; readonly deadline?: number } = {}
): Protocol.Assignment => ({
  ref: extra.ref ?? ref(),
  score: Names.scoreName(score),
  params,
  ...(extra.deadline === undefined ? {} : { deadline: extra.deadline })
})

/** Wait (really) until `cond` holds, polling; false after `ms`. */
export const waitFor = async (cond: () => boolean, ms = 5000, every = 20): Promise<boolean> => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, every))
  }
  return cond()
}

export const readPid = (file: string): number | undefined => {
  try {
    const n = Number(fs.readFileSync(file, "utf8").trim())
    return Number.isInteger(n) && n > 1 ? n : undefined
  } catch {
    return undefined
  }
}

/**
 * Linux process helpers: the start time of a process from /proc (so a
 * recycled pid is never mistaken for the score we started), process-group
 * signals, and a scan for processes that carry a task's environment marker.
 */
import * as fs from "node:fs"

/** What /proc/<pid>/stat tells us about a process. */
export interface ProcStat {
  readonly pid: number
  /** Process group id. */
  readonly pgrp: number
  /** Start time in clock ticks since boot, as a decimal string (field 22). */
  readonly startTime: string
  /** State letter (R, S, Z, ...). */
  readonly state: string
}

/** Parse the text of /proc/<pid>/stat; undefined when it is not in the expected shape. */
export const parseStat = (pid: number, text: string): ProcStat | undefined => {
  // The command name (field 2) is in parentheses and may itself contain spaces
  // and parentheses: everything after the LAST ")" is space-separated.
  const close = text.lastIndexOf(")")
  if (close < 0) return undefined
  const rest = text.slice(close + 2).trim().split(" ")
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  const state = rest[0]
  const pgrp = rest[2]
  const startTime = rest[19]
  if (state === undefined || pgrp === undefined || startTime === undefined) return undefined
  const pg = Number(pgrp)
  if (!Number.isInteger(pg) || !/^\d+$/.test(startTime)) return undefined
  return { pid, pgrp: pg, startTime, state }
}

/** Read /proc/<pid>/stat; undefined when the process does not exist (or /proc is unreadable). */
export const readStat = (pid: number): ProcStat | undefined => {
  try {
    return parseStat(pid, fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return undefined
  }
}

/** Whether `pid` is alive (not a zombie) and is the process that started at `startTime`. */
export const isSameProcess = (pid: number, startTime: string): boolean => {
  const st = readStat(pid)
  return st !== undefined && st.startTime === startTime && st.state !== "Z"
}

/** Send `signal` to the process group `pgid`; false when no such group exists. */
export const signalGroup = (pgid: number, signal: NodeJS.Signals): boolean => {
  if (!Number.isInteger(pgid) || pgid <= 1) return false
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/** Send `signal` to one process; false when it does not exist. */
export const signalProcess = (pid: number, signal: NodeJS.Signals): boolean => {
  if (!Number.isInteger(pid) || pid <= 1) return false
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

/** The pids of every process currently visible in /proc. */
export const allPids = (): ReadonlyArray<number> => {
  try {
    return fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number)
  } catch {
    return []
  }
}

/** Whether the initial environment of `pid` contains every one of `entries` (`NAME=value`). */
export const environHas = (pid: number, entries: ReadonlyArray<string>): boolean => {
  let raw: string
  try {
    raw = fs.readFileSync(`/proc/${pid}/environ`, "utf8")
  } catch {
    return false
  }
  const vars = new Set(raw.split("\0"))
  return entries.every((e) => vars.has(e))
}

/**
 * Processes (other than zombies and ourselves) whose environment carries all
 * of `marker`: the score and every descendant that kept the environment it
 * was given.
 */
export const findByEnviron = (marker: ReadonlyArray<string>): ReadonlyArray<ProcStat> => {
  const out: Array<ProcStat> = []
  for (const pid of allPids()) {
    if (pid === process.pid) continue
    if (!environHas(pid, marker)) continue
    const st = readStat(pid)
    if (st !== undefined && st.state !== "Z") out.push(st)
  }
  return out
}

/** The live members of process group `pgid`. */
export const groupMembers = (pgid: number): ReadonlyArray<ProcStat> => {
  const out: Array<ProcStat> = []
  for (const pid of allPids()) {
    const st = readStat(pid)
    if (st !== undefined && st.pgrp === pgid && st.state !== "Z") out.push(st)
  }
  return out
}

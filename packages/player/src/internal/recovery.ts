/**
 * Stopping what is left of a score whose player died while it ran: its
 * process group when the leader is still the process we started (same pid
 * AND same start time), and any process that still carries the task's
 * environment marker (`ORC_TASK_ID` + `ORC_PLAYER`) — that finds the
 * score's descendants even when the leader is gone, or when the player died
 * between the spawn and journaling the pid. SIGTERM first, SIGKILL after the
 * grace period, each process checked against its start time before every
 * signal so that a recycled pid is never signalled.
 */
import { Duration, Effect } from "effect"
import * as Proc from "./proc.js"

export interface Leftover {
  readonly pid?: number | undefined
  readonly startTime?: string | undefined
  /** `NAME=value` entries every process of the task carries. */
  readonly marker: ReadonlyArray<string>
}

/** The processes of a leftover task that are still alive. */
export const find = (leftover: Leftover): ReadonlyArray<Proc.ProcStat> => {
  const found = new Map<number, Proc.ProcStat>()
  const { pid, startTime } = leftover
  if (pid !== undefined && startTime !== undefined && Proc.isSameProcess(pid, startTime)) {
    for (const m of Proc.groupMembers(pid)) found.set(m.pid, m)
  }
  for (const m of Proc.findByEnviron(leftover.marker)) found.set(m.pid, m)
  return [...found.values()]
}

/** Stop a leftover task's processes; how many there were. */
export const stop = (leftover: Leftover, graceMs: number): Effect.Effect<number> =>
  Effect.gen(function*() {
    const targets = find(leftover)
    if (targets.length === 0) return 0
    const alive = () => targets.filter((t) => Proc.isSameProcess(t.pid, t.startTime))
    for (const t of alive()) Proc.signalProcess(t.pid, "SIGTERM")
    const deadline = Date.now() + graceMs
    while (alive().length > 0 && Date.now() < deadline) {
      yield* Effect.sleep(Duration.millis(50))
    }
    for (const t of alive()) Proc.signalProcess(t.pid, "SIGKILL")
    return targets.length
  })

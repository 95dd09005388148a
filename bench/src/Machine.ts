/**
 * What a result was measured on: CPU model, cores, memory, Node version,
 * load average; and the CPU time a process has used (from /proc), to tell
 * which process was the bottleneck of a run.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as os from "node:os"

export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly node: string
  readonly kernel: string
}

/** The machine, as /proc and `os` describe it. */
export const describe = (): Machine => {
  let cpu = os.cpus()[0]?.model ?? "unknown"
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"))
    if (m?.[1] !== undefined) cpu = m[1].trim()
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    cpu,
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`
  }
}

/** The 1, 5 and 15 minute load averages. */
export const loadAverage = (): readonly [number, number, number] => {
  const [a = 0, b = 0, c = 0] = os.loadavg()
  const r = (x: number) => Math.round(x * 100) / 100
  return [r(a), r(b), r(c)]
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const TICKS = 100

/** CPU seconds a process has used so far, in user and system mode; undefined once it is gone. */
export const cpuTimes = (pid: number): { readonly user: number; readonly system: number } | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // the command name may hold spaces: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { user: Number(fields[11]) / TICKS, system: Number(fields[12]) / TICKS }
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system) a process has used so far; undefined once it is gone. */
export const cpuSeconds = (pid: number): number | undefined => {
  const t = cpuTimes(pid)
  return t === undefined ? undefined : t.user + t.system
}

/** Peak resident memory of a process so far, in MiB (VmHWM). */
export const peakRssMiB = (pid: number): number | undefined => {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return m?.[1] === undefined ? undefined : Math.round(Number(m[1]) / 1024)
  } catch {
    return undefined
  }
}

/** Measures the CPU a set of processes uses between `start` and `stop`. */
export class CpuMeter {
  private readonly before = new Map<number, { readonly user: number; readonly system: number }>()
  private startedAt = 0

  /** `profiled`: processes running the `CpuProfile` preload, told (SIGUSR2) to profile from `start` to `stop`. */
  constructor(
    private readonly pids: ReadonlyArray<{ readonly name: string; readonly pid: number }>,
    private readonly profiled: ReadonlyArray<number> = []
  ) {}

  private signal(): void {
    for (const pid of this.profiled) {
      try {
        process.kill(pid, "SIGUSR2")
      } catch {
        // gone
      }
    }
  }

  start(): void {
    this.signal()
    this.startedAt = performance.now()
    for (const p of this.pids) this.before.set(p.pid, cpuTimes(p.pid) ?? { user: 0, system: 0 })
  }

  /** Per process: CPU seconds used (and the system part), and as a share of one core over the wall time. */
  stop(): Record<string, { readonly cpuSeconds: number; readonly systemSeconds: number; readonly corePercent: number }> {
    const wall = (performance.now() - this.startedAt) / 1000
    this.signal()
    const out: Record<string, { cpuSeconds: number; systemSeconds: number; corePercent: number }> = {}
    for (const p of this.pids) {
      const now = cpuTimes(p.pid) ?? { user: 0, system: 0 }
      const was = this.before.get(p.pid) ?? { user: 0, system: 0 }
      const used = now.user + now.system - was.user - was.system
      out[p.name] = {
        cpuSeconds: round(used, 2),
        systemSeconds: round(now.system - was.system, 2),
        corePercent: wall > 0 ? Math.round((used / wall) * 100) : 0
      }
    }
    return out
  }
}

export const round = (x: number, digits = 1): number => {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

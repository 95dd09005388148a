/**
 * A preload (`NODE_OPTIONS=--import <this file>`) that profiles a daemon
 * with the inspector's CPU profiler — `--cpu-prof` itself is not allowed in
 * NODE_OPTIONS, and the daemons are started by `LocalCluster`, which passes
 * only the environment. With `ORCHESTRA_CPU_PROF_DIR` set, the first
 * SIGUSR2 starts the profiler and the next one stops it and writes
 * `<dir>/<pid>-<n>.cpuprofile`, so a benchmark profiles just its measured
 * window.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as inspector from "node:inspector"
import * as path from "node:path"

const dir = process.env["ORCHESTRA_CPU_PROF_DIR"]

if (dir !== undefined && dir !== "") {
  const session = new inspector.Session()
  session.connect()
  session.post("Profiler.enable")
  session.post("Profiler.setSamplingInterval", { interval: 250 })
  let running = false
  let n = 0
  process.on("SIGUSR2", () => {
    if (!running) {
      running = true
      session.post("Profiler.start")
      return
    }
    running = false
    n++
    session.post("Profiler.stop", (err, result) => {
      if (err !== null || result === undefined) return
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, `${process.pid}-${n}.cpuprofile`), JSON.stringify(result.profile))
    })
  })
}

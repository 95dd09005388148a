import { Names } from "@orchestra/core"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Execution } from "../src/index.js"
import { alive, assignment, cleanup, readPid, tempDir, track, waitFor, writeScore } from "./support/fixtures.js"

afterEach(cleanup)

const spec = (executable: string, over: Partial<Execution.ScoreSpec> = {}): Execution.ScoreSpec => ({
  name: Names.scoreName(path.basename(executable)),
  executable,
  interface: "env",
  variables: {},
  maxOutputBytes: 1024 * 1024,
  ...over
})

const run = (
  score: Execution.ScoreSpec,
  params: Record<string, string | number | boolean | null> = {},
  extra: { readonly deadline?: number; readonly cancelled?: Effect.Effect<void>; readonly killGraceMs?: number } = {}
) =>
  Effect.gen(function*() {
    const spawned: Array<Execution.Spawned> = []
    const result = yield* Execution.run({
      assignment: assignment(score.name, params, extra.deadline === undefined ? {} : { deadline: extra.deadline }),
      player: Names.playerName("p1"),
      score,
      killGraceMs: extra.killGraceMs ?? 300,
      cancelled: extra.cancelled ?? Effect.never,
      onSpawned: (s) => Effect.sync(() => spawned.push(s))
    })
    return { result, spawned }
  })

describe("Execution", () => {
  it.live("env: params as ORC_<key>, task variables, a clean environment, workdir", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const out = path.join(dir, "env.txt")
      const work = tempDir("work")
      process.env.ORC_LEAK_TEST = "leaked"
      const exe = writeScore(dir, "show-env", `env > ${out}; pwd >> ${out}; echo to-stdout; echo to-stderr >&2`)
      const { result, spawned } = yield* run(
        spec(exe, { workdir: work, variables: { LANG: "C.UTF-8" }, path: "/usr/bin:/bin" }),
        { host: "db1", count: 3, flag: true }
      )
      delete process.env.ORC_LEAK_TEST
      expect(result.outcome).toBe("OK")
      expect(result.response).toEqual({})
      expect(result.log).toContain("to-stdout")
      expect(result.log).toContain("to-stderr")
      expect(spawned).toHaveLength(1)
      expect(result.startedAt).toBe(spawned[0]!.at)
      const lines = fs.readFileSync(out, "utf8").trim().split("\n")
      const env = Object.fromEntries(lines.filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))
      expect(env.ORC_host).toBe("db1")
      expect(env.ORC_count).toBe("3")
      expect(env.ORC_flag).toBe("true")
      expect(env.ORC_TASK_ID).toBe(Names.taskRefString(result.ref))
      expect(env.ORC_ATTEMPT).toBe("1")
      expect(env.ORC_JOB_ID).toBe(String(result.ref.job))
      expect(env.ORC_SCORE).toBe("show-env")
      expect(env.ORC_PLAYER).toBe("p1")
      expect(env.PATH).toBe("/usr/bin:/bin")
      expect(env.LANG).toBe("C.UTF-8")
      expect(env.ORC_LEAK_TEST).toBeUndefined()
      expect(env.HOME).toBeUndefined()
      expect(lines[lines.length - 1]).toBe(fs.realpathSync(work))
    }))

  it.live("default workdir is the score's directory", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "where", `echo dir=$(pwd)`)
      const { result } = yield* run(spec(exe, { interface: "pipe" }))
      expect(result.response).toEqual({ dir: fs.realpathSync(dir) })
    }))

  it.live("pipe: key=value lines split at the first '=', other lines to the log, last line without newline kept", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "kv", `echo a=1; echo 'url=http://x/?q=1'; echo 'just a line'; echo '=novalue'; echo e=; echo oops >&2; printf 'last=yes'`)
      const { result } = yield* run(spec(exe, { interface: "pipe" }))
      expect(result.outcome).toBe("OK")
      expect(result.response).toEqual({ a: "1", url: "http://x/?q=1", e: "", last: "yes" })
      expect(result.log).toContain("just a line")
      expect(result.log).toContain("=novalue")
      expect(result.log).toContain("oops")
    }))

  it.live("exit status: non-zero is FAIL with the response kept and the status in the log", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "bad", `echo partial=1; exit 3`)
      const { result } = yield* run(spec(exe, { interface: "pipe" }))
      expect(result.outcome).toBe("FAIL")
      expect(result.response).toEqual({ partial: "1" })
      expect(result.log).toContain("exit status 3")
    }))

  it.live("a score killed by a signal the player did not send is UNKNOWN_FAILURE", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "segv", `kill -SEGV $$`)
      const { result } = yield* run(spec(exe))
      expect(result.outcome).toBe("UNKNOWN_FAILURE")
      expect(result.response.error).toBe("killed by signal SIGSEGV")
    }))

  it.live("json: params on stdin, the object on stdout is the response", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "echo-json", `read -r line; printf '{"got":%s,"env":"%s"}' "$line" "$ORC_n"`)
      const { result } = yield* run(spec(exe, { interface: "json" }), { n: 5, s: "x y" })
      expect(result.outcome).toBe("OK")
      // params are not passed as ORC_ variables to json scores
      expect(result.response).toEqual({ got: { n: 5, s: "x y" }, env: "" })
    }))

  it.live("json: invalid JSON, a non-object and nothing at all are FAIL with a clear error", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const cases = [
        { body: `echo '{"a":'`, error: /^stdout is not valid JSON/ },
        { body: `echo '[1,2]'`, error: /^stdout is an array, expected a JSON object$/ },
        { body: `echo '"s"'`, error: /^stdout is a string, expected a JSON object$/ },
        { body: `true`, error: /^expected a JSON object on stdout, got nothing$/ }
      ]
      for (const [i, c] of cases.entries()) {
        const exe = writeScore(dir, `j${i}`, c.body)
        const { result } = yield* run(spec(exe, { interface: "json" }))
        expect(result.outcome).toBe("FAIL")
        expect(String(result.response.error)).toMatch(c.error)
      }
    }))

  it.live("a score that does not read its json stdin does not break anything", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "noread", `echo '{"ok":true}'`)
      const big = "x".repeat(200_000)
      const { result } = yield* run(spec(exe, { interface: "json" }), { big })
      expect(result.outcome).toBe("OK")
      expect(result.response).toEqual({ ok: true })
    }))

  it.live("spawn failures are HOST_ERROR: missing file, not executable, bad interpreter, bad workdir", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const noexec = path.join(dir, "noexec")
      fs.writeFileSync(noexec, "#!/bin/sh\ntrue\n", { mode: 0o644 })
      const badInterp = path.join(dir, "badinterp")
      fs.writeFileSync(badInterp, "#!/nonexistent/interpreter\n", { mode: 0o755 })
      const ok = writeScore(dir, "ok", "true")
      const cases: Array<[Execution.ScoreSpec, RegExp]> = [
        [spec(path.join(dir, "missing")), /no such file/],
        [spec(noexec), /permission denied/],
        [spec(badInterp), /interpreter/],
        [spec(ok, { workdir: path.join(dir, "nope") }), /workdir .* does not exist/],
        [spec(ok, { workdir: ok }), /is not a directory/],
        [spec(ok, { user: "no-such-user-xyz" }), /does not exist on this host/]
      ]
      for (const [s, re] of cases) {
        const { result, spawned } = yield* run(s)
        expect(result.outcome, String(result.response.error)).toBe("HOST_ERROR")
        expect(String(result.response.error)).toMatch(re)
        expect(spawned).toHaveLength(0)
      }
    }))

  it.live.skipIf(process.getuid?.() !== 0)("user: as root, the score runs as the manifest's user", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      fs.chmodSync(dir, 0o755)
      const exe = writeScore(dir, "whoami", `echo uid=$(id -u)`)
      const { result } = yield* run(spec(exe, { interface: "pipe", user: "nobody", workdir: "/" }))
      expect(result.outcome).toBe("OK")
      expect(result.response.uid).toBe("65534")
      // a score the user cannot reach is a HOST_ERROR that says why
      const hidden = tempDir("hidden") // mode 0700, owned by root
      const exe2 = writeScore(hidden, "whoami", `echo uid=$(id -u)`)
      const denied = yield* run(spec(exe2, { interface: "pipe", user: "nobody", workdir: "/" }))
      expect(denied.result.outcome).toBe("HOST_ERROR")
      expect(String(denied.result.response.error)).toMatch(/as user "nobody": permission denied/)
    }))

  it.live("timeout: SIGTERM to the whole group (grandchild included) → TIMEOUT", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "slow", `sleep 30 & echo $! > ${dir}/grandchild.pid; echo $$ > ${dir}/child.pid; wait`)
      const { result, spawned } = yield* run(spec(exe, { timeoutMs: 400 }))
      const child = readPid(path.join(dir, "child.pid"))!
      const grandchild = readPid(path.join(dir, "grandchild.pid"))!
      track(grandchild)
      expect(result.outcome).toBe("TIMEOUT")
      expect(result.response.error).toBe("timed out after 400ms")
      expect(result.log).toContain("sent SIGTERM to the process group")
      expect(spawned[0]!.pid).toBe(child)
      expect(yield* Effect.promise(() => waitFor(() => !alive(child) && !alive(grandchild), 3000))).toBe(true)
    }))

  it.live("timeout: a group that ignores SIGTERM gets SIGKILL after the grace period", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(
        dir,
        "stubborn",
        `trap '' TERM; sh -c 'trap "" TERM; echo $$ > ${dir}/grandchild.pid; while :; do sleep 0.05; done' & while :; do sleep 0.05; done`
      )
      const { result } = yield* run(spec(exe, { timeoutMs: 300 }), {}, { killGraceMs: 300 })
      yield* Effect.promise(() => waitFor(() => fs.existsSync(path.join(dir, "grandchild.pid")), 1000))
      const grandchild = readPid(path.join(dir, "grandchild.pid"))
      if (grandchild !== undefined) track(grandchild)
      expect(result.outcome).toBe("TIMEOUT")
      expect(result.log).toContain("sent SIGKILL to the process group")
      expect(grandchild).toBeDefined()
      expect(yield* Effect.promise(() => waitFor(() => !alive(grandchild!), 3000))).toBe(true)
    }))

  it.live("deadline: not started once passed; stopped when reached", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const marker = path.join(dir, "ran")
      const exe = writeScore(dir, "mark-and-sleep", `touch ${marker}; exec sleep 30`)
      const past = yield* run(spec(exe), {}, { deadline: Date.now() - 1 })
      expect(past.result.outcome).toBe("TIMEOUT")
      expect(past.spawned).toHaveLength(0)
      expect(fs.existsSync(marker)).toBe(false)
      const soon = yield* run(spec(exe, { timeoutMs: 60_000 }), {}, { deadline: Date.now() + 400 })
      expect(soon.result.outcome).toBe("TIMEOUT")
      expect(soon.result.response.error).toMatch(/deadline/)
      expect(fs.existsSync(marker)).toBe(true)
      expect(alive(soon.spawned[0]!.pid)).toBe(false)
    }))

  it.live("cancel: the group is stopped and the outcome is CANCELLED", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "long", `echo $$ > ${dir}/child.pid; exec sleep 30`)
      const cancel = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(run(spec(exe), {}, { cancelled: Deferred.await(cancel) }))
      yield* Effect.promise(() => waitFor(() => readPid(path.join(dir, "child.pid")) !== undefined, 3000))
      const pid = track(readPid(path.join(dir, "child.pid"))!)
      expect(alive(pid)).toBe(true)
      yield* Deferred.succeed(cancel, undefined)
      const { result } = yield* Fiber.join(fiber)
      expect(result.outcome).toBe("CANCELLED")
      expect(alive(pid)).toBe(false)
    }))

  it.live("interrupting the execution (player shutdown) stops the score", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "long", `echo $$ > ${dir}/child.pid; exec sleep 30`)
      const fiber = yield* Effect.fork(run(spec(exe)))
      yield* Effect.promise(() => waitFor(() => readPid(path.join(dir, "child.pid")) !== undefined, 3000))
      const pid = track(readPid(path.join(dir, "child.pid"))!)
      yield* Fiber.interrupt(fiber)
      expect(yield* Effect.promise(() => waitFor(() => !alive(pid), 3000))).toBe(true)
    }))

  it.live("output beyond maxOutputBytes: the log is cut with a note; pipe/json responses that large are FAIL", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const noisy = writeScore(dir, "noisy", `i=0; while [ $i -lt 2000 ]; do echo "line $i of noise" >&2; i=$((i+1)); done`)
      const { result } = yield* run(spec(noisy, { maxOutputBytes: 1000 }))
      expect(result.outcome).toBe("OK")
      expect(result.log).toMatch(/log truncated: \d+ more bytes beyond maxOutputBytes \(1000\)/)
      expect(Buffer.byteLength(result.log)).toBeLessThan(1200)
      const big = writeScore(dir, "big", `i=0; while [ $i -lt 2000 ]; do echo "k$i=v$i"; i=$((i+1)); done`)
      const piped = yield* run(spec(big, { interface: "pipe", maxOutputBytes: 1000 }))
      expect(piped.result.outcome).toBe("FAIL")
      expect(piped.result.response).toEqual({ error: "stdout exceeds maxOutputBytes (1000 bytes)" })
    }))

  it.live("a background process holding stdout does not hold the result beyond the grace period", () =>
    Effect.gen(function*() {
      const dir = tempDir("exec")
      const exe = writeScore(dir, "daemonish", `sleep 30 & echo $! > ${dir}/bg.pid; echo done=1`)
      const { result } = yield* run(spec(exe, { interface: "pipe" }), {}, { killGraceMs: 300 })
      track(readPid(path.join(dir, "bg.pid"))!)
      expect(result.outcome).toBe("OK")
      expect(result.response).toEqual({ done: "1" })
      expect(result.log).toMatch(/still open .* after the score exited/)
    }))
})

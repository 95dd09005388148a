/**
 * The watchdog: one small helper process per player (not per task) that
 * bounds scores orphaned by a player that died and never came back. The
 * player tells it, over the helper's stdin, the process group of each
 * started score and the time by which that score must be gone (its timeout
 * or the job's deadline, plus two grace periods — by then the player itself
 * would have stopped it). When the player dies, the helper's stdin ends; it
 * then keeps running until every watched score is gone or has been stopped
 * (SIGTERM to the group, SIGKILL one grace period later), and exits.
 *
 * The helper checks a process's start time in /proc before signalling it,
 * so a recycled pid is never signalled. It runs the same Node binary as
 * the player (`node -e`), in its own process group.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"

/** The helper's program. Messages are JSON lines: {"w":pid,"st":"...","at":ms,"grace":ms} or {"f":pid}. */
export const SCRIPT = String.raw`
"use strict";
const fs = require("fs");
const watched = new Map();
let orphaned = false;
const stat = (pid) => {
  try {
    const t = fs.readFileSync("/proc/" + pid + "/stat", "utf8");
    const rest = t.slice(t.lastIndexOf(")") + 2).split(" ");
    return rest[0] === "Z" ? undefined : { pgrp: Number(rest[2]), st: rest[19] };
  } catch { return undefined; }
};
const startTime = (pid) => { const s = stat(pid); return s && s.st; };
const members = (pgid) => {
  const out = [];
  let pids = [];
  try { pids = fs.readdirSync("/proc").filter((n) => /^[0-9]+$/.test(n)).map(Number); } catch {}
  for (const p of pids) { const s = stat(p); if (s && s.pgrp === pgid) out.push({ pid: p, st: s.st }); }
  return out;
};
const done = () => { if (orphaned && watched.size === 0) process.exit(0); };
const fire = (pid) => {
  const w = watched.get(pid);
  if (!w) return;
  if (startTime(pid) !== w.st) { watched.delete(pid); done(); return; }
  // remember exactly who is in the group, so SIGKILL never reaches a recycled pid
  const group = members(pid);
  try { process.kill(-pid, "SIGTERM"); } catch {}
  setTimeout(() => {
    for (const m of group) if (startTime(m.pid) === m.st) { try { process.kill(m.pid, "SIGKILL"); } catch {} }
    watched.delete(pid);
    done();
  }, w.grace);
};
let buf = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
    let m; try { m = JSON.parse(line); } catch { continue; }
    if (typeof m.w === "number") {
      const old = watched.get(m.w); if (old) clearTimeout(old.timer);
      const w = { st: m.st, grace: m.grace };
      w.timer = setTimeout(() => fire(m.w), Math.max(0, m.at - Date.now()));
      watched.set(m.w, w);
    } else if (typeof m.f === "number") {
      const w = watched.get(m.f); if (w) { clearTimeout(w.timer); watched.delete(m.f); }
    }
  }
});
const orphan = () => {
  orphaned = true;
  // stop the orphans that are already gone from the list
  for (const [pid, w] of watched) if (startTime(pid) !== w.st) { clearTimeout(w.timer); watched.delete(pid); }
  done();
  // poll for orphans that exit on their own
  setInterval(() => {
    for (const [pid, w] of watched) if (startTime(pid) !== w.st) { clearTimeout(w.timer); watched.delete(pid); }
    done();
  }, 1000);
};
process.stdin.on("end", orphan);
process.stdin.on("error", orphan);
process.on("SIGHUP", () => {});
process.on("SIGINT", () => {});
`

export interface Watchdog {
  /** The helper's pid (for tests and logs). */
  readonly pid: number | undefined
  /** Stop the process group `pid` (started at `startTime`) at `killAt` (epoch ms) if the player has not. */
  readonly watch: (pid: number, startTime: string, killAt: number, graceMs: number) => void
  /** The score ended: stop watching it. */
  readonly forget: (pid: number) => void
}

/** A watchdog that does nothing (when disabled). */
export const none: Watchdog = { pid: undefined, watch: () => {}, forget: () => {} }

/**
 * Start the helper; it is told to stand down (its stdin closed) when the
 * scope closes — and sees the same if the player is killed.
 */
export const start: Effect.Effect<Watchdog, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const child = ChildProcess.spawn(process.execPath, ["-e", SCRIPT], {
      detached: true,
      stdio: ["pipe", "ignore", "inherit"],
      env: {}
    })
    child.on("error", () => {})
    child.unref()
    const stdin = child.stdin!
    stdin.on("error", () => {})
    ;(stdin as unknown as { unref?: () => void }).unref?.()
    const send = (m: unknown) => {
      if (!stdin.destroyed && child.exitCode === null) stdin.write(JSON.stringify(m) + "\n")
    }
    const wd: Watchdog & { readonly close: () => void } = {
      pid: child.pid,
      watch: (pid, startTime, killAt, graceMs) => send({ w: pid, st: startTime, at: killAt, grace: graceMs }),
      forget: (pid) => send({ f: pid }),
      close: () => stdin.end()
    }
    return wd
  }),
  (wd) => Effect.sync(() => wd.close())
)

import { NodeFileSystem } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { ScoreDirectory } from "../src/index.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const tmpDirs: Array<string> = []
const servers: Array<net.Server> = []

afterAll(async () => {
  for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()))
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true })
})

const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-scan-"))
  tmpDirs.push(d)
  return d
}

const SCRIPT = "#!/bin/sh\nexit 0\n"
const write = (file: string, text: string, mode: number) => {
  fs.writeFileSync(file, text)
  fs.chmodSync(file, mode)
}

const scan = (dir: string, options?: ScoreDirectory.ScanOptions) =>
  ScoreDirectory.scan(dir, options).pipe(Effect.provide(NodeFileSystem.layer))

describe("ScoreDirectory.scan", () => {
  it.effect("picks executables and skips what is not a score", () =>
    Effect.gen(function*() {
      const dir = tmp()
      write(path.join(dir, "zeta"), SCRIPT, 0o755)
      write(path.join(dir, "alpha"), SCRIPT, 0o700) // owner exec only
      write(path.join(dir, "group-only"), SCRIPT, 0o610) // group exec only
      write(path.join(dir, "README"), "not a score\n", 0o644)
      write(path.join(dir, ".hidden"), SCRIPT, 0o755)
      write(path.join(dir, "backup~"), SCRIPT, 0o755)
      write(path.join(dir, "#autosave#"), SCRIPT, 0o755)
      write(path.join(dir, "exec.conf.sh"), SCRIPT, 0o755) // a name, not a .conf
      write(path.join(dir, "weird.conf"), "interface=env\n", 0o755) // manifests are never scores
      write(path.join(dir, "weird.yaml"), "interface: env\n", 0o755)
      write(path.join(dir, "weird.yml"), "interface: env\n", 0o755)
      fs.mkdirSync(path.join(dir, "subdir"))
      fs.chmodSync(path.join(dir, "subdir"), 0o755)
      fs.symlinkSync("zeta", path.join(dir, "link-to-exec"))
      write(path.join(dir, "plain"), "data\n", 0o644)
      fs.symlinkSync("plain", path.join(dir, "link-to-plain"))
      fs.symlinkSync("nowhere", path.join(dir, "dangling"))
      write(path.join(dir, "bad name"), SCRIPT, 0o755)
      const socketPath = path.join(dir, "sock")
      const server = net.createServer()
      servers.push(server)
      yield* Effect.promise(() => new Promise<void>((resolve) => server.listen(socketPath, () => resolve())))

      const r = yield* scan(dir)
      expect(r.scores.map((s) => s.name)).toEqual(["alpha", "exec.conf.sh", "group-only", "link-to-exec", "zeta"])
      expect(r.scores.every((s) => s.source === "none" && s.manifest.interface === "env")).toBe(true)
      expect(r.scores.find((s) => s.name === "link-to-exec")!.executable).toBe(path.join(dir, "link-to-exec"))
      expect(r.excluded.map((e) => [e.name, e.reason.replace(/\(.*\)/, "(…)")])).toEqual([
        ["bad name", expect.stringMatching(/^invalid score name: score name must not contain whitespace/)],
        ["dangling", "broken symbolic link (…)"],
        ["weird", "manifest without an executable (…)"],
        ["weird", "manifest without an executable (…)"],
        ["weird", "manifest without an executable (…)"]
      ])
      expect(r.excluded.find((e) => e.name === "dangling")!.reason).toBe("broken symbolic link (to nowhere)")
      expect(r.excluded.find((e) => e.name === "bad name")!.file).toBe(path.join(dir, "bad name"))
    }))

  it.effect("finds the manifest: <dir>/<name>.yaml, then manifestDirs, then .conf", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const extra1 = tmp()
      const extra2 = tmp()
      for (const n of ["local", "local-yml", "from-extra", "from-extra2", "conf-only", "yaml-over-conf", "extra-over-conf", "bare"]) {
        write(path.join(dir, n), SCRIPT, 0o755)
      }
      fs.writeFileSync(path.join(dir, "local.yaml"), "interface: pipe\n")
      fs.writeFileSync(path.join(extra1, "local.yaml"), "interface: json\n") // shadowed by the local one
      fs.writeFileSync(path.join(dir, "local-yml.yml"), "interface: json\n")
      fs.writeFileSync(path.join(extra1, "from-extra.yaml"), "interface: pipe\n")
      fs.writeFileSync(path.join(extra2, "from-extra.yaml"), "interface: json\n") // shadowed by extra1
      fs.writeFileSync(path.join(extra2, "from-extra2.yml"), "interface: json\n")
      fs.writeFileSync(path.join(dir, "conf-only.conf"), "interface=pipe\n")
      fs.writeFileSync(path.join(dir, "yaml-over-conf.yaml"), "interface: json\n")
      fs.writeFileSync(path.join(dir, "yaml-over-conf.conf"), "interface=pipe\n")
      fs.writeFileSync(path.join(extra1, "extra-over-conf.yaml"), "interface: json\n")
      fs.writeFileSync(path.join(dir, "extra-over-conf.conf"), "interface=pipe\n")
      // a manifest in an extra directory for a score this player does not have is not reported
      fs.writeFileSync(path.join(extra1, "not-installed.yaml"), "interface: env\n")

      const r = yield* scan(dir, { manifestDirs: [extra1, extra2, path.join(dir, "missing-dir")] })
      const by = Object.fromEntries(r.scores.map((s) => [s.name, s]))
      expect(Object.keys(by)).toEqual(["bare", "conf-only", "extra-over-conf", "from-extra", "from-extra2", "local", "local-yml", "yaml-over-conf"])
      expect([by["local"]!.source, by["local"]!.manifest.interface, by["local"]!.manifestFile]).toEqual(["manifest", "pipe", path.join(dir, "local.yaml")])
      expect(by["local-yml"]!.manifest.interface).toBe("json")
      expect([by["from-extra"]!.manifest.interface, by["from-extra"]!.manifestFile]).toEqual(["pipe", path.join(extra1, "from-extra.yaml")])
      expect(by["from-extra2"]!.manifestFile).toBe(path.join(extra2, "from-extra2.yml"))
      expect([by["conf-only"]!.source, by["conf-only"]!.manifest.interface]).toEqual(["legacy-conf", "pipe"])
      expect([by["yaml-over-conf"]!.source, by["yaml-over-conf"]!.manifest.interface]).toEqual(["manifest", "json"])
      expect([by["extra-over-conf"]!.source, by["extra-over-conf"]!.manifest.interface]).toEqual(["manifest", "json"])
      expect([by["bare"]!.source, by["bare"]!.manifestFile]).toEqual(["none", undefined])
      expect(r.excluded).toEqual([])
      // the catalog entry agrees
      expect(by["conf-only"]!.info).toMatchObject({ name: "conf-only", interface: "pipe", source: "legacy-conf", digest: by["conf-only"]!.digest })
    }))

  it.effect("excludes, with the reason, broken manifests and likely mistakes", () =>
    Effect.gen(function*() {
      const dir = tmp()
      write(path.join(dir, "broken"), SCRIPT, 0o755)
      fs.writeFileSync(path.join(dir, "broken.yaml"), "interface: pipe\nparameters:\n  type: object\n  properties:\n    n: { type: intger }\n")
      write(path.join(dir, "both"), SCRIPT, 0o755)
      fs.writeFileSync(path.join(dir, "both.yaml"), "interface: pipe\n")
      fs.writeFileSync(path.join(dir, "both.yml"), "interface: env\n")
      write(path.join(dir, "noexec"), SCRIPT, 0o644)
      fs.writeFileSync(path.join(dir, "noexec.conf"), "interface=pipe\n")
      fs.mkdirSync(path.join(dir, "adir"))
      fs.writeFileSync(path.join(dir, "adir.yaml"), "interface: env\n")
      fs.writeFileSync(path.join(dir, "orphan.conf"), "interface=env\n")
      write(path.join(dir, "badconf"), SCRIPT, 0o755)
      fs.writeFileSync(path.join(dir, "badconf.conf"), "interface=pipe\nuser=root\n")
      write(path.join(dir, "fine"), SCRIPT, 0o755)

      const r = yield* scan(dir)
      expect(r.scores.map((s) => s.name)).toEqual(["fine"])
      const reasons = Object.fromEntries(r.excluded.map((e) => [e.name, e.reason]))
      expect(Object.keys(reasons)).toEqual(["adir", "badconf", "both", "broken", "noexec", "orphan"])
      expect(reasons["broken"]).toContain(`${path.join(dir, "broken.yaml")}:5: parameters.properties.n.type: `)
      expect(reasons["badconf"]).toContain(`${path.join(dir, "badconf.conf")}:2: user: unknown key "user"`)
      expect(reasons["both"]).toMatch(/several manifests/)
      expect(reasons["noexec"]).toBe("not executable (mode 644) but has a manifest (noexec.conf)")
      expect(reasons["adir"]).toBe("not a regular file (Directory) but has a manifest (adir.yaml)")
      expect(reasons["orphan"]).toBe('manifest without an executable (no file "orphan")')
      expect(r.excluded.find((e) => e.name === "orphan")!.file).toBe(path.join(dir, "orphan.conf"))
    }))

  it.effect("the broken fixtures directory excludes every score with its reason", () =>
    Effect.gen(function*() {
      const r = yield* scan(path.join(here, "fixtures", "broken"))
      expect(r.scores).toEqual([])
      expect(r.excluded.map((e) => e.name)).toEqual([
        "bad-conf",
        "bad-env-param",
        "bad-environment",
        "bad-interface",
        "bad-keyword",
        "bad-params",
        "bad-syntax",
        "name-mismatch",
        "not-executable",
        "orphan",
        "unknown-key"
      ])
      for (const e of r.excluded) {
        if (e.name === "not-executable" || e.name === "orphan") continue
        expect(e.reason, e.name).toMatch(new RegExp(`^invalid manifest.*${e.name}\\.(yaml|conf):\\d+`, "s"))
      }
    }))

  it.effect("digest is sha256 of executable bytes then manifest text, and changes with either", () =>
    Effect.gen(function*() {
      const dir = tmp()
      write(path.join(dir, "s"), SCRIPT, 0o755)
      write(path.join(dir, "bare"), SCRIPT, 0o755)
      const manifest = "interface: pipe\n"
      fs.writeFileSync(path.join(dir, "s.yaml"), manifest)
      const first = yield* scan(dir)
      const s1 = first.scores.find((s) => s.name === "s")!
      expect(s1.digest).toBe(crypto.createHash("sha256").update(SCRIPT).update(manifest).digest("hex"))
      expect(first.scores.find((s) => s.name === "bare")!.digest).toBe(crypto.createHash("sha256").update(SCRIPT).digest("hex"))

      fs.writeFileSync(path.join(dir, "s.yaml"), "interface: pipe\ndescription: changed\n")
      const s2 = (yield* scan(dir)).scores.find((s) => s.name === "s")!
      expect(s2.digest).not.toBe(s1.digest)
      write(path.join(dir, "s"), SCRIPT + "# changed\n", 0o755)
      const s3 = (yield* scan(dir)).scores.find((s) => s.name === "s")!
      expect(s3.digest).not.toBe(s2.digest)
      // the same content elsewhere gives the same digest
      const other = tmp()
      write(path.join(other, "s"), SCRIPT + "# changed\n", 0o755)
      fs.writeFileSync(path.join(other, "s.yaml"), "interface: pipe\ndescription: changed\n")
      expect((yield* scan(other)).scores[0]!.digest).toBe(s3.digest)
    }))

  it.effect("a missing directory is a ScanError naming it", () =>
    Effect.gen(function*() {
      const dir = path.join(tmp(), "nope")
      const e = yield* Effect.flip(scan(dir))
      expect(e._tag).toBe("ScanError")
      expect(e.dir).toBe(dir)
      expect(e.message).toContain(dir)
    }))

  it.effect("an empty directory scans to nothing", () =>
    Effect.gen(function*() {
      const r = yield* scan(tmp())
      expect(r).toEqual({ scores: [], excluded: [] })
    }))

  it("isIgnoredName", () => {
    for (const n of [".x", "x~", "#x#", "x.conf", "x.yaml", "x.yml"]) expect(ScoreDirectory.isIgnoredName(n), n).toBe(true)
    for (const n of ["x", "x.sh", "conf", "yaml"]) expect(ScoreDirectory.isIgnoredName(n), n).toBe(false)
  })
})

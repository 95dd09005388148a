/**
 * Score scripts and manifests used by several test files: small shell (and
 * one Node) scripts whose output the tests can predict exactly.
 */
import * as path from "node:path"
import type { ScoreDef } from "./Harness.js"
import { manifest } from "./Harness.js"

const noParams = { type: "object", additionalProperties: false, properties: {} }

/** PATH for scores that need node (`#!/usr/bin/env node`). */
export const nodePath = `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`

/** `check`: a pipe score that succeeds (`result=good`) — or, with `fails`, prints `result=bad` and exits 2. */
export const check = (fails: boolean): ScoreDef => ({
  script: fails
    ? `#!/bin/sh\necho "result=bad"\necho "player=$ORC_PLAYER"\necho "check failed on purpose" >&2\nexit 2\n`
    : `#!/bin/sh\necho "result=good"\necho "player=$ORC_PLAYER"\n`,
  manifest: manifest({ name: "check", interface: "pipe", parameters: noParams, environment: { timeout: "10s" } })
})

/** `where`: prints its working directory; the manifest's workdir is `workdir`. */
export const where = (workdir: string): ScoreDef => ({
  script: `#!/bin/sh\necho "pwd=$(pwd)"\n`,
  manifest: manifest({ name: "where", interface: "pipe", parameters: noParams, environment: { workdir, timeout: "10s" } })
})

/** `whoami`: prints its uid; with `user`, the manifest asks to run as that user. */
export const whoami = (user?: string): ScoreDef => ({
  script: `#!/bin/sh\necho "uid=$(id -u)"\n`,
  manifest: manifest({
    name: "whoami",
    interface: "pipe",
    parameters: noParams,
    environment: { timeout: "10s", ...(user === undefined ? {} : { user }) }
  })
})

/**
 * `many-keys`: `count` lines `k<i>=v<i> a=b c` (values with `=` and spaces),
 * noise lines without `=` and a line with an empty key, which are ignored.
 */
export const manyKeys: ScoreDef = {
  script: `#!/bin/sh
n=\${ORC_count:-500}
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) { printf "k%d=v%d a=b c\\n", i, i; if (i % 100 == 0) print "a noise line without an equals sign" } print "=empty-key-is-ignored" }'
`,
  manifest: manifest({
    name: "many-keys",
    interface: "pipe",
    parameters: { type: "object", additionalProperties: false, properties: { count: { type: "integer", minimum: 1, maximum: 100000 } } },
    environment: { timeout: "30s" }
  })
}

/** What `many-keys` reports for `count`. */
export const manyKeysResponse = (count: number): Record<string, string> => {
  const out: Record<string, string> = {}
  for (let i = 0; i < count; i++) out[`k${i}`] = `v${i} a=b c`
  return out
}

/** `big-json`: a json score answering a large nested object built from `n`. */
export const bigJson: ScoreDef = {
  script: `#!/usr/bin/env node
let input = ""
process.stdin.setEncoding("utf8")
process.stdin.on("data", (c) => { input += c })
process.stdin.on("end", () => {
  const params = JSON.parse(input)
  const items = []
  for (let i = 0; i < params.n; i++) items.push({ i, name: "item-" + i, tags: ["a", "b", String(i % 7)], nested: { even: i % 2 === 0, none: null } })
  process.stdout.write(JSON.stringify({ count: params.n, items, text: "é ✓ \\" \\\\ \\n end", echo: params }))
})
`,
  manifest: manifest({
    name: "big-json",
    interface: "json",
    parameters: {
      type: "object",
      required: ["n"],
      additionalProperties: false,
      properties: { n: { type: "integer", minimum: 0, maximum: 100000 }, extra: { type: "object" } }
    },
    environment: { path: nodePath, timeout: "30s", maxOutputBytes: "4MiB" }
  })
}

/** What `big-json` answers for these params. */
export const bigJsonResponse = (params: { readonly n: number; readonly extra?: unknown }): unknown => {
  const items = []
  for (let i = 0; i < params.n; i++) items.push({ i, name: `item-${i}`, tags: ["a", "b", String(i % 7)], nested: { even: i % 2 === 0, none: null } })
  return { count: params.n, items, text: "é ✓ \" \\ \n end", echo: params }
}

/**
 * `mark`: writes `<markers>/ran-<job id>` and reports `count`; its params
 * are a required integer `count` ≥ 1 and an optional lowercase `label`.
 */
export const mark = (markers: string): ScoreDef => ({
  script: `#!/bin/sh\ntouch "$MARK_DIR/ran-$ORC_JOB_ID"\necho "count=$ORC_count"\n`,
  manifest: manifest({
    name: "mark",
    interface: "pipe",
    parameters: {
      type: "object",
      required: ["count"],
      additionalProperties: false,
      properties: { count: { type: "integer", minimum: 1 }, label: { type: "string", pattern: "^[a-z]+$" } }
    },
    environment: { timeout: "10s", variables: { MARK_DIR: markers } }
  })
})

/** `lines`: a pipe score that prints `count` lines `key<i>=value<i>` and exits at once. */
export const lines: ScoreDef = {
  script: `#!/bin/sh
awk -v n="\${ORC_count:-2000}" 'BEGIN { for (i = 0; i < n; i++) printf "key%d=value%d\\n", i, i }'
`,
  manifest: manifest({
    name: "lines",
    interface: "pipe",
    parameters: { type: "object", additionalProperties: false, properties: { count: { type: "integer", minimum: 0 } } },
    environment: { timeout: "30s" }
  })
}

/**
 * `tick`: sleeps a little, appends its task id to `<log>` (one short
 * O_APPEND write: atomic) and reports its job id.
 */
export const tick = (log: string): ScoreDef => ({
  script: `#!/bin/sh\nsleep "\${ORC_seconds:-0.05}"\necho "$ORC_TASK_ID" >> "$TICK_LOG"\necho "job=$ORC_JOB_ID"\n`,
  manifest: manifest({
    name: "tick",
    interface: "pipe",
    parameters: { type: "object", additionalProperties: false, properties: { seconds: { type: "number", minimum: 0 } } },
    environment: { timeout: "60s", variables: { TICK_LOG: log } }
  })
})

// Bundles the compiled `orchestra` command (dist/main.js and everything it
// imports) into dist/bundle/, so that each `orchestra` process loads one
// file instead of hundreds of modules: start-up drops from ~2.5 s to ~0.7 s
// of CPU (see docs/decisions/0005). Run by `npm run build` after `tsc -b`.
import { rolldown } from "rolldown"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "..")
const repo = path.resolve(root, "../..")
// Next to the unbundled modules, so that paths relative to a module
// (import.meta.url) mean the same in both.
const out = path.join(root, "dist")

const input = { orchestra: path.join(root, "dist", "main.js") }
// Worker threads are started from files next to the module that starts
// them: bundle them as entries of their own, under the name they are
// looked up by.
const worker = path.join(repo, "plugins", "store-sqlite", "dist", "internal", "writerWorker.js")
if (fs.existsSync(worker)) input.writerWorker = worker

const bundle = await rolldown({
  input,
  platform: "node",
  // Native add-ons stay in node_modules.
  external: ["better-sqlite3", "@parcel/watcher", "msgpackr-extract"],
  logLevel: "warn"
})
for (const f of fs.readdirSync(out)) if (f.startsWith("bundle-chunk-")) fs.rmSync(path.join(out, f))
await bundle.write({ dir: out, format: "esm", entryFileNames: "[name].js", chunkFileNames: "bundle-chunk-[hash].js", sourcemap: true })
await bundle.close()

#!/usr/bin/env node
// The bundled build starts several times faster; the plain build is the fallback.
import { existsSync } from "node:fs"

const bundled = new URL("../dist/orchestra.js", import.meta.url)
await import(existsSync(bundled) ? bundled.href : new URL("../dist/main.js", import.meta.url).href)

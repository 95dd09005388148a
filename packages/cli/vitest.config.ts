import { defineConfig } from "vitest/config"

// These tests start real `orchestra` processes: allow for a busy machine.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } })

import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // the ConductorLive test sends itself SIGHUP: run test files in child processes
    pool: "forks",
    silent: "passed-only",
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})

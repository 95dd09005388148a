/**
 * Vitest configuration of the dashboard: the browser test starts a real
 * cluster and a real Chromium, so files run one at a time in forked workers
 * with generous timeouts.
 */
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    silent: "passed-only",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // pages update asynchronously: poll the DOM for up to 15 s
    expect: { poll: { timeout: 15_000, interval: 50 } }
  }
})

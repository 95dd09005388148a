/**
 * Vitest configuration of the cross-process suite: real `orchestra`
 * processes over mutual TLS, so one file at a time, each in its own forked
 * worker, with generous timeouts.
 */
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    pool: "forks",
    fileParallelism: false,
    silent: "passed-only",
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})

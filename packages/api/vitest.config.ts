import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    silent: "passed-only",
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})

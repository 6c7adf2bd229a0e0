// The upstream CLI cannot find its own tests when installed from npm, so we include a
// wrapper test file of our own instead.
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: { root: import.meta.dirname, include: ["conformance.test.mjs"] },
})

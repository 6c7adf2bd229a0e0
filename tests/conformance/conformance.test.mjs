// Registers the upstream suite against CONFORMANCE_TEST_URL (the server's origin).
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.CONFORMANCE_TEST_URL
if (!baseUrl) throw new Error("CONFORMANCE_TEST_URL is required")
// The opt-in tests of the reserved subscription APIs (`/v1/stream/__ds/`) run too.
const opts = { baseUrl, subscriptions: true }
if (process.env.CONFORMANCE_LONGPOLL_TIMEOUT_MS) {
  opts.longPollTimeoutMs = Number(process.env.CONFORMANCE_LONGPOLL_TIMEOUT_MS)
}
runConformanceTests(opts)

// Package clienttest runs the official npm socket.io-client v4 (pinned by package-lock.json) against the
// Go Socket.IO server: clienttest_test.go serves the conformance handler on loopback ports and runs
// `node --test client.test.mjs` with their URLs in the environment, passing only if node passes.
//
// It needs Node.js 20+ and the locked npm packages: run `npm ci --prefix services/realtime/clienttest`
// from the repository root first (make test does).
package clienttest

// Package clienttest runs the official npm socket.io-client v4 (pinned by package-lock.json) against the
// Go Socket.IO server: clienttest_test.go serves the conformance handler on loopback ports and runs
// `node --test client.test.mjs` with their URLs in the environment, passing only if node passes.
// replicas_test.go starts two ClassWaves edge replicas sharing one Redis (bus and recovery store, from
// pkg/testenv) behind a switchable TCP proxy and runs replicas.test.mjs: every replica delivers bus events
// to its own clients, and a client cut off from replica A recovers on replica B.
//
// It needs Node.js 20+ and the locked npm packages: run `npm ci --prefix services/realtime/clienttest`
// from the repository root first (make test does).
package clienttest

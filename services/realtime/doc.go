// Package realtime groups the realtime edge: engineio and socketio (the reusable protocol
// packages), edge (the ClassWaves namespaces, audio ingress and fan-out), conformance (the
// protocol test server) and clienttest (tests with the official socket.io-client).
package realtime

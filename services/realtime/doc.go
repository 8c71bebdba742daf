// Package realtime groups the realtime edge: engineio and socketio (the reusable protocol
// packages), socketio/redisadapter (connection state recovery kept in Redis, shared by replicas), edge
// (the ClassWaves namespaces, audio ingress and fan-out), conformance (the protocol test server) and
// clienttest (tests with the official socket.io-client).
package realtime

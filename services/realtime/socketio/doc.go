// Package socketio is a Socket.IO protocol v5 server on top of package engineio, following the public
// specification in socketio/socket.io-protocol and the behaviour of the reference server (npm socket.io
// v4), so that the official socket.io-client v4 connects unmodified.
//
// A Server serves namespaces (Of). A namespace runs connect middlewares (Use) that see the handshake auth
// object and may refuse the connection with a ConnectError, then calls its connection handlers with the
// new Socket. Sockets receive events (On, or OnBorrowed for a handler that borrows the event's binary
// attachments rather than getting copies) and emit them (Emit, EmitAck, EmitWithAck), with
// acknowledgements, binary attachments ([]byte arguments) both ways, rooms (Join, Leave, To) and volatile
// emits. Broadcasts go through the namespace's Adapter: the default MemoryAdapter delivers on this
// process only; a distributed adapter can embed it (MemoryAdapter.Deliver sends a packet to this
// process's sockets) and keep recovery state in shared storage, as package redisadapter does. A
// broadcast's Key (BroadcastOperator.Key) names it across replicas that each make it, so that such an
// adapter keeps it once under one offset.
//
// With Config.Recovery enabled the server implements connection state recovery as npm socket.io v4 does
// with connectionStateRecovery: event packets carry an offset, the adapter keeps a bounded buffer of them,
// and a client that reconnects within the window with its private session id and last offset gets its
// socket id, its rooms and the packets it missed back (Socket.Recovered reports it).
//
// The package holds no application logic.
package socketio

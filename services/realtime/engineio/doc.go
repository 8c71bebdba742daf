// Package engineio is an Engine.IO protocol v4 server (the transport layer under Socket.IO v5), built on
// gorilla/websocket and net/http, following the public specification in socketio/engine.io-protocol.
//
// It serves both transports at one path (for example /engine.io/ or /socket.io/): HTTP long-polling (GET
// to receive, POST to send, packets record-separated by 0x1e, binary as "b"+base64) and WebSocket (one
// packet per frame, binary frames as is), with the upgrade from polling to WebSocket (probe ping/pong,
// noop to release a pending poll, upgrade packet). The server sends pings every PingInterval and closes a
// session that does not answer with a pong within PingTimeout.
//
// Every session has its own bounded write queue, drained by that session's transport: a WebSocket writer
// goroutine, or the pending polling GET. Send only appends to the queue, so a slow client never blocks the
// caller or other clients; volatile sends are dropped once the queue passes a soft limit, and a session
// whose queue passes the hard limit is closed.
//
// An idle WebSocket connection holds no goroutine and no read buffer. The HTTP handler returns once the
// connection is upgraded. The writer goroutine runs only while the queue holds packets. The reader of a
// connection that streams (three messages in a row, each less than Config.ReadLinger after the one
// before) waits up to ReadLinger for the next one; otherwise, or after that wait, it parks the
// connection on an epoll instance the server shares (Linux): the goroutine ends, the 4 KB read buffer
// goes back to a pool, and the poller starts a reader again when the socket is readable.
// Config.GoroutinePerConnection keeps a reader per connection instead (TLS connections and other systems
// always do). Each session's heartbeat deadline (its next ping, or its pong's) is kept in one heap per
// server behind one timer.
//
// The writer writes all the packets queued when it takes a batch with one system call, and before its
// first batch it yields the processor while more packets keep arriving, so that a broadcast to many
// sessions is written in batches rather than packet by packet.
//
// A binary WebSocket message is read into a pooled buffer. A Handler gets a copy of it; a Handler that
// implements BorrowingHandler may take the buffer itself, lent until its HandleMessage returns, which
// saves the server an allocation of the message's size per binary message.
//
// The package knows nothing of Socket.IO or of any application: it hands each session's messages to the
// Handler that the Server's connection callback returns for it.
package engineio

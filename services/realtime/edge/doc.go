// Package edge is the ClassWaves side of the realtime edge: the /sessions and /guidance Socket.IO
// namespaces (JWT handshake auth, session and group rooms, REST-first session control), fan-out of bus
// events to those rooms, audio ingress to the stt service over one StreamAudio stream per group, and
// connection state recovery. The protocol itself lives in package socketio.
//
// # Namespaces and rooms
//
// Both namespaces verify auth.token (or an Authorization: Bearer header) at the handshake. /guidance is
// for staff (teacher, admin, super_admin): a student token is refused there with CONNECT_ERROR
// {message: "forbidden", data: {code: "FORBIDDEN"}}, so teacher guidance never reaches a student. On
// both namespaces session:join {sessionId} puts the socket in room "session:<id>" once the session
// service authorized it (AuthorizeRealtimeJoin); on /sessions group:join puts it in "group:<id>". Student
// sockets of /sessions are also in room "role:student", which teacher-facing broadcasts exclude.
//
// # Events fanned out from the bus
//
// Start subscribes (bus FanOut) to SessionEventsTopic, STTEventsTopic, GuidanceEventsTopic and
// AnalyticsEventsTopic. Every payload carries schemaVersion "1.0" and the event's traceId; timestamps are
// RFC 3339 (the event's occurred_at, or now when it has none). Each emit counts in
// ws_messages_emitted_total{event}. Malformed events (undecodable, payload missing, unknown tier or
// prompt kind, insight_json that is not the tier's insight message) are dropped with a warning.
//
//   - session.status_changed -> session:status_changed {sessionId, status, previousStatus, reason} to
//     the session room on /sessions.
//   - session.group_status_changed -> group:status_changed {groupId, sessionId, status, isReady} to the
//     group room and the session room on /sessions.
//   - stt.transcript -> transcription:group:new {id, groupId, sessionId, text, timestamp, confidence} to
//     the session and group rooms on /sessions.
//   - guidance.insight_produced, tier 1 -> ai:tier1:insight {groupId, sessionId, insights, timestamp};
//     tier 2 -> ai:tier2:insight {sessionId, insights, timestamp}. insights is the Tier1Insight or
//     Tier2Insight JSON object (camelCase) as the guidance service wrote it. Sent to the session room on
//     /guidance and, unless GuidanceCanonical (GUIDANCE_CANONICAL), also to the session room on /sessions
//     without its students (the seed's dual emit).
//   - guidance.prompt_raised, kind "alert" -> teacher:alert {id, alertId, sessionId, groupId, category,
//     priority, message, reason, tier, expiresAt, timestamp}; kind "recommendation" ->
//     teacher:recommendations {sessionId, groupId, recommendations: [{id, category, priority, message,
//     reason, tier, expiresAt}], timestamp}. To the session room on /guidance only. expiresAt is left out
//     when the prompt has no expiry. The bus event carries no insight id, so insightId is not sent.
//   - guidance.prompt_acted has no client event: the acting teacher made the change over REST and has
//     its answer; the seed's frontend knows no such event.
//   - analytics.finalized -> analytics:finalized {sessionId, timestamp} when ok, analytics:failed
//     {sessionId, error, timestamp} (error: the failure reason, "ANALYTICS_FAILED" when empty) otherwise,
//     to the session room on /sessions without its students. With AnalyticsUseNamespaced off
//     (ANALYTICS_USE_NAMESPACED=0) they also go to the session room on /guidance.
//   - analytics.summaries_ready -> summaries:ready {sessionId, groupIds, timestamp} to the session room
//     on /sessions without its students.
//
// # Replicas and connection state recovery
//
// Several edge replicas can serve clients at once: with the Redis bus, FanOut gives every replica every
// event, and each replica emits it to its own sockets. With RecoveryWindow > 0 (WS_RECOVERY_WINDOW,
// default 2m) Socket.IO connection state recovery is on: every event carries an offset as last
// argument, and a client that reconnects within the window (socket.io-client sends its pid and last
// offset) gets its socket id, rooms, connection state (principal, authorized sessions and groups) and
// the events it missed, in order and once each (socket.recovered is true; ws:connected says
// recovered: true). The handshake token is verified again and must name the same principal.
//
// Without WithRedis (monolithic mode) recovery state lives in the process (socketio.MemoryAdapter).
// WithRedis keeps it in Redis (package socketio/redisadapter), so that a client recovers on any replica:
// events go through one Redis stream per namespace whose entry ids are the offsets; every broadcast of a
// bus event carries a key (event id and client event name), so the replicas store it once, and every
// replica delivers the stream in its order. Audio streams do not survive a disconnection: the client
// starts them again.
package edge

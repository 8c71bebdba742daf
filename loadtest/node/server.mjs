// Reference server of the realtime load benchmark: npm socket.io v4 on node:http doing the same work as
// loadtest/goserver (the Go Socket.IO package), so that loadtest/wsbench can measure both side by side.
//
//   node [--expose-gc] loadtest/node/server.mjs [--port 3000] [--host 127.0.0.1] [--ping-interval 25000] [--ping-timeout 20000]
//
// (or PORT, HOST, PING_INTERVAL_MS, PING_TIMEOUT_MS). Settings are socket.io's defaults except those
// stated: perMessageDeflate off (as the Go server), no adapter other than the default in-memory one,
// the client bundle not served.
//
// Namespace /bench:
//   "join" {room}                 -> joins room, acks {ok: true, room}       (bad room: {ok: false, error})
//   "chunk" {groupId, audioData}  -> counts the chunk and its bytes, acks ()  (no binary: {ok: false, error})
// HTTP:
//   GET  /stats                                   -> counters and memory, JSON
//   POST /broadcast?room=R&count=M&size=S&from=F  -> emits "tick" {seq, payload} M times to room R as fast
//                                                    as it can (seq F..F+M-1, payload S bytes), then answers
//                                                    {emitted, emitMillis}
//   POST /gc                                      -> full garbage collection (needs node --expose-gc)
import http from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values: opts } = parseArgs({
  options: {
    port: { type: "string", default: process.env.PORT ?? "3000" },
    host: { type: "string", default: process.env.HOST ?? "127.0.0.1" },
    "ping-interval": { type: "string", default: process.env.PING_INTERVAL_MS ?? "25000" },
    "ping-timeout": { type: "string", default: process.env.PING_TIMEOUT_MS ?? "20000" },
  },
});

function positiveInt(name, text, max) {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new RangeError(`${name} must be an integer in [0, ${max}], got ${JSON.stringify(text)}`);
  }
  return n;
}

let port, pingInterval, pingTimeout;
try {
  port = positiveInt("port", opts.port, 65535);
  pingInterval = positiveInt("ping-interval", opts["ping-interval"], 3_600_000);
  pingTimeout = positiveInt("ping-timeout", opts["ping-timeout"], 3_600_000);
} catch (err) {
  console.error(`server.mjs: ${err.message}`);
  process.exit(2);
}

const MAX_ROOM = 128;
const MAX_BROADCASTS = 1_000_000;
const MAX_PAYLOAD = 1_000_000;

const stats = { joins: 0, badJoins: 0, chunks: 0, chunkBytes: 0, badChunks: 0, broadcasts: 0 };

const httpServer = http.createServer(handleHTTP);
const io = new Server(httpServer, { perMessageDeflate: false, serveClient: false, pingInterval, pingTimeout });
const bench = io.of("/bench");

bench.on("connection", (socket) => {
  socket.on("join", (msg, ack) => {
    const room = msg && typeof msg === "object" ? msg.room : undefined;
    let reply;
    if (typeof room !== "string" || room === "" || room.length > MAX_ROOM) {
      stats.badJoins++;
      reply = { ok: false, error: "ROOM_REQUIRED" };
    } else {
      socket.join(room);
      stats.joins++;
      reply = { ok: true, room };
    }
    if (typeof ack === "function") ack(reply);
  });
  socket.on("chunk", (msg, ack) => {
    const data = msg && typeof msg === "object" ? msg.audioData : undefined;
    if (!Buffer.isBuffer(data)) {
      stats.badChunks++;
      if (typeof ack === "function") ack({ ok: false, error: "AUDIO_DATA_REQUIRED" });
      return;
    }
    stats.chunks++;
    stats.chunkBytes += data.length;
    if (typeof ack === "function") ack();
  });
});

function sendJSON(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function handleHTTP(req, res) {
  // socket.io answers /socket.io/ itself; everything else lands here.
  const url = new URL(req.url, "http://localhost");
  if (url.pathname === "/stats" && req.method === "GET") {
    const mem = process.memoryUsage();
    sendJSON(res, 200, {
      server: "node",
      version: `node ${process.version}, socket.io ${ioVersion}`,
      pid: process.pid,
      sockets: bench.sockets.size,
      ...stats,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external },
    });
    return;
  }
  if (url.pathname === "/broadcast" && req.method === "POST") {
    let room, count, size, from;
    try {
      room = url.searchParams.get("room") ?? "";
      if (room === "" || room.length > MAX_ROOM) throw new RangeError("room must be 1 to 128 characters");
      count = positiveInt("count", url.searchParams.get("count") ?? "", MAX_BROADCASTS);
      size = positiveInt("size", url.searchParams.get("size") ?? "0", MAX_PAYLOAD);
      from = positiveInt("from", url.searchParams.get("from") ?? "0", Number.MAX_SAFE_INTEGER - MAX_BROADCASTS);
    } catch (err) {
      sendJSON(res, 400, { error: "BAD_PARAMETER", message: err.message });
      return;
    }
    const payload = "x".repeat(size);
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      bench.to(room).emit("tick", { seq: from + i, payload });
    }
    const emitMillis = Number(process.hrtime.bigint() - start) / 1e6;
    stats.broadcasts += count;
    sendJSON(res, 200, { emitted: count, emitMillis });
    return;
  }
  if (url.pathname === "/gc" && req.method === "POST") {
    if (typeof globalThis.gc !== "function") {
      sendJSON(res, 501, { error: "GC_NOT_EXPOSED", message: "start node with --expose-gc" });
      return;
    }
    globalThis.gc();
    sendJSON(res, 200, { rss: process.memoryUsage().rss });
    return;
  }
  sendJSON(res, 404, { error: "NOT_FOUND", message: `no route ${req.method} ${url.pathname}` });
}

let ioVersion = "4";
try {
  const { createRequire } = await import("node:module");
  ioVersion = createRequire(import.meta.url)("socket.io/package.json").version;
} catch {
  // the version is informational only
}

httpServer.on("error", (err) => {
  console.error(`server.mjs: ${err.message}`);
  process.exit(1);
});
httpServer.listen(port, opts.host, () => {
  const addr = httpServer.address();
  console.log(`listening http://${addr.address}:${addr.port}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    httpServer.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}

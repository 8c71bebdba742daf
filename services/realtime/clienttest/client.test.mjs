// Tests of the Go Socket.IO server with the official socket.io-client v4, run by clienttest_test.go with
// PLAIN_URL (the conformance server) and RECOVERY_URL (the same with connection state recovery on).
import { test } from "node:test";
import assert from "node:assert/strict";
import { io, Manager } from "socket.io-client";

const PLAIN_URL = process.env.PLAIN_URL;
const RECOVERY_URL = process.env.RECOVERY_URL;
if (!PLAIN_URL || !RECOVERY_URL) {
  throw new Error("PLAIN_URL and RECOVERY_URL must be set (run through clienttest_test.go)");
}

const TIMEOUT = 10_000;

// waitFor resolves with the arguments of the next `event` on `emitter`, and fails after TIMEOUT.
function waitFor(emitter, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), TIMEOUT);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

// connect opens a socket and waits for it to connect; the test disconnects it when done.
async function connect(t, url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  t.after(() => socket.disconnect());
  await waitFor(socket, "connect");
  return socket;
}

test("connects with auth and receives the auth object back", async (t) => {
  const socket = io(PLAIN_URL, { forceNew: true, auth: { token: "abc", n: 3 } });
  t.after(() => socket.disconnect());
  const [auth] = await waitFor(socket, "auth");
  assert.deepEqual(auth, { token: "abc", n: 3 });
  assert.equal(socket.connected, true);
  assert.equal(typeof socket.id, "string");
});

test("multiplexes two namespaces over one connection", async (t) => {
  const manager = new Manager(PLAIN_URL, { reconnection: false });
  const main = manager.socket("/", { auth: { ns: "main" } });
  const custom = manager.socket("/custom", { auth: { ns: "custom" } });
  t.after(() => {
    main.disconnect();
    custom.disconnect();
  });
  const [[mainAuth], [customAuth]] = await Promise.all([waitFor(main, "auth"), waitFor(custom, "auth")]);
  assert.deepEqual(mainAuth, { ns: "main" });
  assert.deepEqual(customAuth, { ns: "custom" });
  assert.equal(main.io, custom.io);
  assert.notEqual(main.id, custom.id);
  main.emit("message", "to main");
  custom.emit("message", "to custom");
  const [[a], [b]] = await Promise.all([waitFor(main, "message-back"), waitFor(custom, "message-back")]);
  assert.equal(a, "to main");
  assert.equal(b, "to custom");
});

test("emits with an acknowledgement", async (t) => {
  const socket = await connect(t, PLAIN_URL);
  const args = await new Promise((resolve) => socket.emit("message-with-ack", 1, "2", { 3: [false] }, (...a) => resolve(a)));
  assert.deepEqual(args, [1, "2", { 3: [false] }]);
  const answer = await socket.timeout(TIMEOUT).emitWithAck("message-with-ack", "promise");
  assert.equal(answer, "promise");
});

test("sends and receives binary Buffers", async (t) => {
  const socket = await connect(t, PLAIN_URL);
  const chunk = Buffer.from([1, 2, 3, 255]);
  socket.emit("message", chunk, { meta: "audio", nested: Buffer.from([9]) });
  const [gotChunk, gotObj] = await waitFor(socket, "message-back");
  assert.ok(Buffer.isBuffer(gotChunk));
  assert.deepEqual([...gotChunk], [1, 2, 3, 255]);
  assert.equal(gotObj.meta, "audio");
  assert.deepEqual([...gotObj.nested], [9]);
  const acked = await socket.timeout(TIMEOUT).emitWithAck("message-with-ack", Buffer.from([7, 7]));
  assert.deepEqual([...acked], [7, 7]);
});

test("answers a server acknowledgement request", async (t) => {
  const socket = await connect(t, `${PLAIN_URL}/rooms`);
  socket.on("question", (q, ack) => ack(`answer to ${q}`, Buffer.from([42])));
  const [text, buf] = await new Promise((resolve) => socket.emit("ask-me", "life", (...a) => resolve(a)));
  assert.equal(text, "answer to life");
  assert.deepEqual([...buf], [42]);
});

test("broadcasts to rooms, excluding the sender", async (t) => {
  const [a, b, c] = await Promise.all([1, 2, 3].map(() => connect(t, `${PLAIN_URL}/rooms`)));
  await a.timeout(TIMEOUT).emitWithAck("join", "class-1");
  await b.timeout(TIMEOUT).emitWithAck("join", "class-1");
  await c.timeout(TIMEOUT).emitWithAck("join", "class-2");
  const received = { a: [], b: [], c: [] };
  a.on("said", (m) => received.a.push(m));
  b.on("said", (m) => received.b.push(m));
  c.on("said", (m) => received.c.push(m));
  const bGot = waitFor(b, "said");
  await a.timeout(TIMEOUT).emitWithAck("say", "class-1", { text: "hello class 1" });
  assert.deepEqual((await bGot)[0], { text: "hello class 1" });
  await b.timeout(TIMEOUT).emitWithAck("leave", "class-1");
  const aGot = waitFor(a, "said");
  await c.timeout(TIMEOUT).emitWithAck("say", "class-1", "from class 2");
  assert.equal((await aGot)[0], "from class 2");
  // A last message to every room: the earlier ones have been delivered once it arrives.
  const done = Promise.all([waitFor(b, "said"), waitFor(c, "said")]);
  await a.timeout(TIMEOUT).emitWithAck("say", b.id, "direct");
  await c.timeout(TIMEOUT).emitWithAck("join", "class-1");
  await a.timeout(TIMEOUT).emitWithAck("say", "class-1", "end");
  await done;
  assert.deepEqual(received.a, ["from class 2"]);
  assert.deepEqual(received.b, [{ text: "hello class 1" }, "direct"]);
  assert.deepEqual(received.c, ["end"]);
});

test("refuses a namespace connection with CONNECT_ERROR data, then accepts a valid token", async (t) => {
  const refused = io(`${PLAIN_URL}/private`, { forceNew: true, reconnection: false, auth: { token: "wrong" } });
  t.after(() => refused.disconnect());
  const [err] = await waitFor(refused, "connect_error");
  assert.equal(err.message, "not authorized");
  assert.deepEqual(err.data, { code: "AUTH_REQUIRED" });
  const socket = await connect(t, `${PLAIN_URL}/private`, { auth: { token: "secret" } });
  assert.equal(await socket.timeout(TIMEOUT).emitWithAck("whoami"), "authorized");
});

test("upgrades from polling to WebSocket", async (t) => {
  const socket = io(PLAIN_URL, { forceNew: true, reconnection: false, transports: ["polling", "websocket"] });
  t.after(() => socket.disconnect());
  await waitFor(socket, "connect");
  const engine = socket.io.engine;
  if (engine.transport.name !== "websocket") {
    assert.equal(engine.transport.name, "polling");
    const [transport] = await waitFor(engine, "upgrade");
    assert.equal(transport.name, "websocket");
  }
  assert.equal(engine.transport.name, "websocket");
  assert.equal(await socket.timeout(TIMEOUT).emitWithAck("message-with-ack", "after upgrade"), "after upgrade");
});

test("works over polling only", async (t) => {
  const socket = await connect(t, PLAIN_URL, { transports: ["polling"] });
  assert.equal(socket.io.engine.transport.name, "polling");
  socket.emit("message", Buffer.from([5, 6]), "text");
  const [buf, text] = await waitFor(socket, "message-back");
  assert.deepEqual([...buf], [5, 6]);
  assert.equal(text, "text");
});

test("recovers the session after the transport drops", async (t) => {
  const a = io(`${RECOVERY_URL}/rooms`, { forceNew: true, transports: ["websocket"], reconnectionDelay: 500, randomizationFactor: 0 });
  t.after(() => a.disconnect());
  // The welcome event gives the client an offset to recover from.
  const [welcomeId, welcomeRecovered] = await waitFor(a, "welcome");
  assert.equal(a.recovered, false);
  assert.equal(welcomeId, a.id);
  assert.equal(welcomeRecovered, false);
  await a.timeout(TIMEOUT).emitWithAck("join", "class");
  const b = await connect(t, `${RECOVERY_URL}/rooms`, { transports: ["websocket"] });
  const id = a.id;

  const missed = [];
  a.on("said", (m) => missed.push(m));
  const disconnected = waitFor(a, "disconnect");
  // Drop the TCP connection under the WebSocket (no close frame), like a network failure; the manager
  // reconnects with the session's pid and last offset.
  a.io.engine.transport.ws.terminate();
  const [reason] = await disconnected;
  assert.equal(reason, "transport close");
  await b.timeout(TIMEOUT).emitWithAck("say", "class", "while you were away");
  await b.timeout(TIMEOUT).emitWithAck("say", "class", "and again");

  await waitFor(a, "connect");
  assert.equal(a.recovered, true);
  assert.equal(a.id, id);
  // Rooms are restored: a live message reaches the recovered socket without joining again.
  const live = waitFor(a, "said");
  await b.timeout(TIMEOUT).emitWithAck("say", "class", "live");
  await live;
  assert.deepEqual(missed, ["while you were away", "and again", "live"]);
});

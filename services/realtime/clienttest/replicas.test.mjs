// Tests of two ClassWaves edge replicas sharing one Redis (bus and recovery store) with the official
// socket.io-client, run by replicas_test.go. PROXY_URL is a TCP proxy that CONTROL_URL can cut and point
// at replica A or B; A_URL and B_URL reach the replicas directly. CONTROL_URL/publish puts a transcript
// or a Tier 1 insight on a replica's bus.
import { test } from "node:test";
import assert from "node:assert/strict";
import { io, Manager } from "socket.io-client";

const { PROXY_URL, A_URL, B_URL, CONTROL_URL, TEACHER_TOKEN, SESSION_ID, GROUP_ID } = process.env;
if (!PROXY_URL || !A_URL || !B_URL || !CONTROL_URL || !TEACHER_TOKEN || !SESSION_ID || !GROUP_ID) {
  throw new Error("PROXY_URL, A_URL, B_URL, CONTROL_URL, TEACHER_TOKEN, SESSION_ID and GROUP_ID must be set (run through replicas_test.go)");
}

const TIMEOUT = 10_000;

async function control(path) {
  const res = await fetch(CONTROL_URL + path, { method: "POST" });
  assert.equal(res.status, 200, `${path}: ${await res.text()}`);
}

const publishTranscript = (replica, text) => control(`/publish?replica=${replica}&type=transcript&value=${text}`);
const publishInsight = (replica, id) => control(`/publish?replica=${replica}&type=insight&value=${id}`);

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

// until resolves once cond() is true, polling, and fails after TIMEOUT with what().
async function until(cond, what) {
  const deadline = Date.now() + TIMEOUT;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// record collects one field of every `event` received by socket.
function record(socket, event, field) {
  const got = [];
  socket.on(event, (payload) => got.push(field(payload)));
  return got;
}

async function joinSession(socket) {
  const ack = await socket.timeout(TIMEOUT).emitWithAck("session:join", { sessionId: SESSION_ID });
  assert.equal(ack.ok, true, JSON.stringify(ack));
}

// teacher opens a namespace socket of a new manager on url and waits for ws:connected.
async function teacher(t, url, nsp) {
  const socket = io(`${url}${nsp}`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: TEACHER_TOKEN } });
  t.after(() => socket.disconnect());
  const [hello] = await waitFor(socket, "ws:connected");
  assert.equal(hello.namespace, nsp);
  return socket;
}

test("every replica delivers each bus event to its own clients, once", async (t) => {
  const onA = await teacher(t, A_URL, "/sessions");
  const onB = await teacher(t, B_URL, "/sessions");
  await joinSession(onA);
  await joinSession(onB);
  const gotA = record(onA, "transcription:group:new", (p) => p.text);
  const gotB = record(onB, "transcription:group:new", (p) => p.text);
  await publishTranscript("A", "from-a");
  await publishTranscript("B", "from-b");
  await publishTranscript("A", "end");
  await until(() => gotA.includes("end") && gotB.includes("end"), () => `A ${gotA}, B ${gotB}`);
  assert.deepEqual(gotA, ["from-a", "from-b", "end"]);
  assert.deepEqual(gotB, ["from-a", "from-b", "end"]);
});

test("a client recovers on the other replica: rooms, connection state and missed events, once each", async (t) => {
  await control("/route?to=A");
  // One manager, two namespaces over one connection through the proxy, as the teacher dashboard does.
  const manager = new Manager(PROXY_URL, {
    transports: ["websocket"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    randomizationFactor: 0,
  });
  const sessions = manager.socket("/sessions", { auth: { token: TEACHER_TOKEN } });
  const guidance = manager.socket("/guidance", { auth: { token: TEACHER_TOKEN } });
  t.after(() => {
    sessions.disconnect();
    guidance.disconnect();
  });
  const hellos = record(sessions, "ws:connected", (p) => p.recovered);
  const transcripts = record(sessions, "transcription:group:new", (p) => p.text);
  const insights = record(guidance, "ai:tier1:insight", (p) => p.insights.id);
  const dualInsights = record(sessions, "ai:tier1:insight", (p) => p.insights.id);
  await Promise.all([waitFor(sessions, "connect"), waitFor(guidance, "connect")]);
  assert.equal(sessions.recovered, false);
  await joinSession(sessions);
  await joinSession(guidance);
  const joined = await sessions.timeout(TIMEOUT).emitWithAck("group:join", { groupId: GROUP_ID, sessionId: SESSION_ID });
  assert.equal(joined.ok, true, JSON.stringify(joined));

  // Observers on B tell when B has handled the events published while the client is away.
  const observer = await teacher(t, B_URL, "/guidance");
  await joinSession(observer);
  const observed = record(observer, "ai:tier1:insight", (p) => p.insights.id);

  // Events before the cut give both sockets an offset.
  await publishTranscript("A", "before");
  await publishInsight("A", "ins-0");
  await until(() => transcripts.length === 1 && insights.length === 1, () => `${transcripts} ${insights}`);
  const ids = { sessions: sessions.id, guidance: guidance.id };

  const gone = Promise.all([waitFor(sessions, "disconnect"), waitFor(guidance, "disconnect")]);
  await control("/cut");
  const reasons = (await gone).map(([reason]) => reason);
  assert.deepEqual(reasons, ["transport close", "transport close"]);

  // While away (reconnection attempts are refused), events reach the replicas through either bus.
  await publishTranscript("B", "missed-1");
  await publishTranscript("A", "missed-2");
  await publishInsight("B", "ins-1");
  await until(() => observed.includes("ins-1"), () => `observer ${observed}`);

  // The proxy now leads to replica B.
  const back = Promise.all([waitFor(sessions, "connect"), waitFor(guidance, "connect")]);
  await control("/route?to=B");
  await back;
  assert.equal(sessions.recovered, true);
  assert.equal(guidance.recovered, true);
  assert.equal(sessions.id, ids.sessions);
  assert.equal(guidance.id, ids.guidance);
  await until(() => transcripts.length >= 3 && insights.length >= 2, () => `${transcripts} ${insights}`);

  // The connection state came back: a group status update needs no new join.
  const status = await sessions.timeout(TIMEOUT).emitWithAck("group:status_update", { groupId: GROUP_ID, status: "ready" });
  assert.equal(status.ok, true, JSON.stringify(status));
  assert.equal(status.sessionId, SESSION_ID);

  // The rooms came back: live events reach the recovered sockets on B.
  await publishTranscript("A", "live");
  await publishInsight("B", "ins-2");
  await publishTranscript("B", "end");
  await until(() => transcripts.includes("end") && insights.includes("ins-2"), () => `${transcripts} ${insights}`);
  assert.deepEqual(transcripts, ["before", "missed-1", "missed-2", "live", "end"]);
  assert.deepEqual(insights, ["ins-0", "ins-1", "ins-2"]);
  // GUIDANCE_CANONICAL is off: the teacher's /sessions socket gets the insights too, once each.
  await until(() => dualInsights.includes("ins-2"), () => `${dualInsights}`);
  assert.deepEqual(dualInsights, ["ins-0", "ins-1", "ins-2"]);
  assert.deepEqual(hellos, [false, true]);
});

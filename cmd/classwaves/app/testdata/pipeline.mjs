// The whole live pipeline, driven by the official socket.io-client v4 against a running
// ClassWaves process: a student streams PCM audio on /sessions; the teacher, on /sessions and
// /guidance over one connection, receives the transcript, the Tier 1 insight and, after ending the
// session over REST, analytics:finalized and summaries:ready. Prints what it received as JSON.
//
// Env: BASE (http://host:port), TEACHER_TOKEN, STUDENT_TOKEN, SESSION_ID, GROUP_ID, CLIENT_PKG
// (path of a package.json whose node_modules has socket.io-client).
import { createRequire } from "node:module";

const require = createRequire(process.env.CLIENT_PKG);
const { Manager } = require("socket.io-client");

const { BASE, TEACHER_TOKEN, STUDENT_TOKEN, SESSION_ID, GROUP_ID } = process.env;
const received = {};
const deadline = setTimeout(() => {
  console.log(JSON.stringify({ error: "timed out", received }));
  process.exit(2);
}, 60000);

function record(name, payload) {
  (received[name] ??= []).push(payload);
}

function waitFor(socket, event) {
  return new Promise((resolve) => socket.once(event, resolve));
}

function connect(manager, nsp, token) {
  const s = manager.socket(nsp, { auth: { token } });
  return new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", (err) => reject(new Error(`${nsp}: ${err.message}`)));
  });
}

// 16 kHz PCM16 mono: a voiced-like tone with an amplitude envelope, loud enough to count as speech.
function speech(seconds) {
  const rate = 16000;
  const buf = Buffer.alloc(seconds * rate * 2);
  for (let i = 0; i < seconds * rate; i++) {
    const t = i / rate;
    const env = 0.6 + 0.4 * Math.sin(2 * Math.PI * 3 * t);
    const v = env * (Math.sin(2 * Math.PI * 180 * t) + 0.5 * Math.sin(2 * Math.PI * 360 * t));
    buf.writeInt16LE(Math.round(v * 9000), i * 2);
  }
  return buf;
}

const teacherMgr = new Manager(BASE, { transports: ["websocket"], reconnection: false });
const teacher = await connect(teacherMgr, "/sessions", TEACHER_TOKEN);
const guidance = await connect(teacherMgr, "/guidance", TEACHER_TOKEN);
for (const ev of ["transcription:group:new", "ai:tier1:insight", "analytics:finalized", "analytics:failed", "summaries:ready", "session:status_changed"]) {
  teacher.on(ev, (p) => record("sessions " + ev, p));
}
for (const ev of ["ai:tier1:insight", "ai:tier2:insight", "teacher:alert", "teacher:recommendations"]) {
  guidance.on(ev, (p) => record("guidance " + ev, p));
}
for (const s of [teacher, guidance]) {
  const ack = await s.emitWithAck("session:join", { sessionId: SESSION_ID });
  if (!ack?.ok) throw new Error("teacher session:join refused: " + JSON.stringify(ack));
}

const studentMgr = new Manager(BASE, { transports: ["websocket"], reconnection: false });
const student = await connect(studentMgr, "/sessions", STUDENT_TOKEN);
const joined = await student.emitWithAck("group:join", { groupId: GROUP_ID, sessionId: SESSION_ID });
if (!joined?.ok) throw new Error("group:join refused: " + JSON.stringify(joined));
const started = await student.emitWithAck("audio:start", { groupId: GROUP_ID, format: "audio/pcm", sampleRate: 16000 });
if (!started?.ok) throw new Error("audio:start refused: " + JSON.stringify(started));

const transcript = waitFor(teacher, "transcription:group:new");
const insight = waitFor(guidance, "ai:tier1:insight");
// 10 s of audio in 250 ms chunks, faster than real time (the per-socket limits allow it).
const audio = speech(10);
for (let off = 0; off < audio.length; off += 8000) {
  student.emit("audio:chunk", { groupId: GROUP_ID, audioData: audio.subarray(off, off + 8000) });
  await new Promise((r) => setTimeout(r, 30));
}
await student.emitWithAck("audio:stop", { groupId: GROUP_ID });
await transcript;
await insight;

const finalized = waitFor(teacher, "analytics:finalized");
const summaries = waitFor(teacher, "summaries:ready");
const res = await fetch(`${BASE}/api/v1/sessions/${SESSION_ID}/end`, {
  method: "POST",
  headers: { "content-type": "application/json", authorization: `Bearer ${TEACHER_TOKEN}` },
  body: "{}",
});
if (res.status !== 200) throw new Error("end session: " + res.status + " " + (await res.text()));
await finalized;
await summaries;
await new Promise((r) => setTimeout(r, 200)); // let any duplicate arrive before counting

clearTimeout(deadline);
console.log(JSON.stringify({ received }));
teacherMgr.engine?.close();
studentMgr.engine?.close();
process.exit(0);

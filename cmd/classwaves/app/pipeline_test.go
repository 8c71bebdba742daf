package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/classwaves/classwaves/services/stt/openaitest"
)

// The transcription server's answer for every window: on topic, two voices, a question.
const pipelineSaid = "Ana: I think plants use light energy from the sun to make glucose in their leaves. " +
	"Ben: Yes, chlorophyll absorbs the light energy, and why do you think they also need water?"

// TestLivePipeline runs the product end to end in one process, as the frontends use it: REST
// creates the session and joins a student; the official socket.io-client streams the student's PCM
// audio on /sessions; stt windows and transcribes it (a local server speaking the OpenAI
// transcription API), guidance analyses it, and the teacher's /sessions and /guidance sockets
// receive transcription:group:new and ai:tier1:insight; ending the session over REST yields
// analytics:finalized and summaries:ready, and the stored analytics hold the audio's figures.
func TestLivePipeline(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js 20+) is required for the socket.io-client tests: %v", err)
	}
	clientPkg, err := filepath.Abs("../../../services/realtime/clienttest/package.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(clientPkg), "node_modules", "socket.io-client")); err != nil {
		t.Fatalf("run `npm ci --prefix services/realtime/clienttest` first (make test does): %v", err)
	}
	whisper := openaitest.New(t)
	whisper.Respond(func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Response: openaitest.Said(pipelineSaid, 10)}
	})
	a, logs, _ := start(t, map[string]string{
		"STT_PROVIDER": "openai", "OPENAI_BASE_URL": whisper.URL, "OPENAI_API_KEY": "sk-test",
		"STT_WINDOW_SECONDS": "10", "AI_TIER1_INTERVAL_MS": "5000", "AI_TIER1_MIN_WORDS": "10",
		"FEATURE_GROUP_SESSION_SUMMARIES": "1",
	})
	root := "http://" + a.Addrs().HTTP
	base := root + "/api/v1"
	token := devSignIn(t, root)

	code, body := do(t, "POST", base+"/sessions", `{"title":"Photosynthesis",
		"learningObjectives":["explain how plants use light energy to make glucose","describe the role of chlorophyll"],
		"groups":[{"name":"Maples","maxSize":4},{"name":"Oaks","maxSize":4}]}`, token)
	sess := field(body, "data", "session")
	sessionID, _ := sess["id"].(string)
	if code != 200 || sessionID == "" {
		t.Fatalf("create = %d %v", code, body)
	}
	code, body = do(t, "POST", base+"/sessions/join", fmt.Sprintf(`{"accessCode":%q,"displayName":"Ana","groupId":%q}`,
		sess["accessCode"], sess["groups"].([]any)[0].(map[string]any)["id"]), "")
	studentToken, _ := field(body, "data")["token"].(string)
	groupID, _ := field(body, "data", "group")["id"].(string)
	if code != 200 || studentToken == "" || groupID == "" {
		t.Fatalf("join = %d %v", code, body)
	}
	if code, body := do(t, "POST", base+"/sessions/"+sessionID+"/start", `{"force":true}`, token); code != 200 {
		t.Fatalf("start = %d %v", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/pipeline.mjs")
	cmd.Env = append(os.Environ(), "BASE="+root, "TEACHER_TOKEN="+token, "STUDENT_TOKEN="+studentToken,
		"SESSION_ID="+sessionID, "GROUP_ID="+groupID, "CLIENT_PKG="+clientPkg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var result struct {
		Error    string                       `json:"error"`
		Received map[string][]json.RawMessage `json:"received"`
	}
	if jerr := json.Unmarshal(out, &result); err != nil || jerr != nil || result.Error != "" {
		var exit *exec.ExitError
		errors.As(err, &exit)
		t.Fatalf("pipeline.mjs: %v %s\nstdout: %s\nstderr: %s\nserver log tail: %s", err, result.Error, out, stderr.String(), tail(logs.String()))
	}
	got := func(key string) []map[string]any {
		var list []map[string]any
		for _, raw := range result.Received[key] {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Errorf("%s payload %s: %v", key, raw, err)
			}
			list = append(list, m)
		}
		return list
	}

	// The transcript reaches the teacher with the seed's fields.
	tr := got("sessions transcription:group:new")
	if len(tr) != 1 || tr[0]["text"] != pipelineSaid || tr[0]["groupId"] != groupID || tr[0]["schemaVersion"] != "1.0" {
		t.Errorf("transcription:group:new = %v", tr)
	}
	// The Tier 1 insight reaches /guidance (and /sessions: GUIDANCE_CANONICAL defaults to dual emit),
	// measured by the built-in analyzer, with evidence from the transcript's window.
	for _, key := range []string{"guidance ai:tier1:insight", "sessions ai:tier1:insight"} {
		ins := got(key)
		if len(ins) != 1 {
			t.Fatalf("%s: %d events, want 1: %v", key, len(ins), ins)
		}
		insights, _ := ins[0]["insights"].(map[string]any)
		metrics, _ := insights["metrics"].(map[string]any)
		evidence, _ := insights["evidence"].([]any)
		if ins[0]["groupId"] != groupID || ins[0]["sessionId"] != sessionID || insights["analyzer"] != "builtin" ||
			num(metrics, "topicalFocus") < 0.3 || metrics["questionCount"] != float64(1) || len(evidence) == 0 {
			t.Errorf("%s = %v", key, ins[0])
		}
		if ev, _ := evidence[0].(map[string]any); ev["windowId"] != tr[0]["id"] {
			t.Errorf("%s evidence %v does not point at the transcript %v", key, ev, tr[0]["id"])
		}
	}
	if fin := got("sessions analytics:finalized"); len(fin) != 1 || fin[0]["sessionId"] != sessionID {
		t.Errorf("analytics:finalized = %v, want one for the session", fin)
	}
	if sum := got("sessions summaries:ready"); len(sum) != 1 || len(sum[0]["groupIds"].([]any)) != 2 {
		t.Errorf("summaries:ready = %v, want one naming both groups", sum)
	}
	if failed := got("sessions analytics:failed"); len(failed) != 0 {
		t.Errorf("analytics:failed = %v", failed)
	}

	// The stored analytics: 10 s of audio that is all speech, the transcript's 31 words in one
	// turn, one Tier 1 insight on topic with one question, one student of two groups' roster.
	code, body = do(t, "GET", base+"/analytics/session/"+sessionID, "", token)
	an := field(body, "data", "analytics")
	if code != 200 || an["status"] != "finalized" {
		t.Fatalf("analytics = %d %v", code, body)
	}
	var g map[string]any
	for _, x := range an["groups"].([]any) {
		if x.(map[string]any)["groupId"] == groupID {
			g = x.(map[string]any)
		}
	}
	words := float64(len(strings.Fields(pipelineSaid)))
	if g == nil || g["wordCount"] != fmt.Sprint(words) || g["turnCount"] != "1" || g["insightCount"] != float64(1) ||
		g["onTopicRatio"] != float64(1) || g["questionCount"] != float64(1) || g["memberCount"] != float64(1) ||
		num(g, "speakingSeconds") < 8 || num(g, "speakingSeconds") > 10.01 {
		t.Errorf("group analytics = %v, want %v words, 1 turn, 1 insight on topic with 1 question, 8-10 s of speech", g, words)
	}
	if an["joinedStudentCount"] != float64(1) || num(an, "insightCount") < 1 || an["groupCount"] != float64(2) {
		t.Errorf("session analytics = %v", an)
	}

	// The summaries are stored and answered (200, not 202) once announced.
	code, body = do(t, "GET", base+"/sessions/"+sessionID+"/summaries", "", token)
	if summary := field(body, "data", "summary"); code != 200 || summary["text"] == "" || summary["summarizer"] != "builtin" {
		t.Errorf("summaries = %d %v", code, body)
	}
	code, body = do(t, "GET", base+"/sessions/"+sessionID+"/groups/"+groupID+"/summary", "", token)
	if summary := field(body, "data", "summary"); code != 200 || summary["groupId"] != groupID {
		t.Errorf("group summary = %d %v", code, body)
	}
}

// field walks nested JSON objects by key; a missing step yields an empty map.
func field(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		m = next
	}
	return m
}

// num reads a JSON number (protojson leaves zero values out: missing is 0).
func num(m map[string]any, key string) float64 {
	f, _ := m[key].(float64)
	return f
}

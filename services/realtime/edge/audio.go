package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// Audio error codes.
const (
	CodeAudioDisabled    = "AUDIO_DISABLED"
	CodeAudioNotStarted  = "AUDIO_NOT_STARTED"
	CodeAudioBusy        = "AUDIO_STREAM_ACTIVE"
	CodeAudioTooLarge    = "AUDIO_CHUNK_TOO_LARGE"
	CodeAudioFormat      = "AUDIO_FORMAT_UNSUPPORTED"
	CodeAudioUnavailable = "STT_UNAVAILABLE"
)

const audioStopTimeout = 5 * time.Second

// audioStream is one group's StreamAudio stream, owned by the socket that started it.
type audioStream struct {
	groupID   string
	sessionID string
	schoolID  string
	owner     *conn
	socket    *socketio.Socket
	cancel    context.CancelFunc
	done      chan struct{}

	mu     sync.Mutex
	stream grpc.BidiStreamingClient[sttv1.StreamAudioRequest, sttv1.StreamAudioResponse]
	seq    int64
	closed bool
}

func (a *audioStream) send(data []byte) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, io.ErrClosedPipe
	}
	a.seq++
	err := a.stream.Send(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Chunk{
		Chunk: &sttv1.AudioChunk{Data: data, Seq: a.seq}}})
	return a.seq, err
}

// stop sends AudioStop, half-closes and waits (bounded) for the server to finish.
func (a *audioStream) stop(ctx context.Context) {
	a.mu.Lock()
	if a.stream == nil {
		a.closed = true
		a.mu.Unlock()
		a.cancel()
		return
	}
	if !a.closed {
		a.closed = true
		_ = a.stream.Send(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Stop{Stop: &sttv1.AudioStop{}}})
		_ = a.stream.CloseSend()
	}
	a.mu.Unlock()
	t := time.NewTimer(audioStopTimeout)
	defer t.Stop()
	select {
	case <-a.done:
	case <-t.C:
	case <-ctx.Done():
	}
	a.cancel()
}

func parseFormat(f string) (sttv1.AudioFormat, bool) {
	f = strings.ToLower(strings.TrimSpace(f))
	switch {
	case f == "" || strings.Contains(f, "webm"):
		return sttv1.AudioFormat_AUDIO_FORMAT_WEBM_OPUS, true
	case strings.Contains(f, "ogg"):
		return sttv1.AudioFormat_AUDIO_FORMAT_OGG_OPUS, true
	case strings.Contains(f, "wav"):
		return sttv1.AudioFormat_AUDIO_FORMAT_WAV, true
	case strings.Contains(f, "pcm"), strings.Contains(f, "l16"):
		return sttv1.AudioFormat_AUDIO_FORMAT_PCM16, true
	}
	return 0, false
}

// audioFail refuses an audio event: in the ack when asked for, else as an audio:error event.
func (e *Edge) audioFail(ev *socketio.Event, c *conn, groupID, code, message string) {
	payload := map[string]any{"ok": false, "code": code, "message": message, "groupId": groupID,
		"schemaVersion": SchemaVersion, "traceId": c.traceID}
	if ev.HasAck() {
		_ = ev.Ack(payload)
		return
	}
	e.emit(ev.Socket(), "audio:error", payload)
}

func (e *Edge) onAudioStart(ev *socketio.Event, c *conn) {
	var p struct {
		GroupID    string `json:"groupId"`
		SessionID  string `json:"sessionId"`
		Format     string `json:"format"`
		MimeType   string `json:"mimeType"`
		SampleRate int32  `json:"sampleRate"`
	}
	if ev.Args.Len() < 1 || ev.Args.Decode(0, &p) != nil || !validID(p.GroupID) {
		e.audioFail(ev, c, p.GroupID, CodeInvalidPayload, "groupId must be a UUID")
		return
	}
	if !e.cfg.UnifiedSTT {
		e.audioFail(ev, c, p.GroupID, CodeAudioDisabled, "audio is not accepted on this namespace")
		return
	}
	if p.Format == "" {
		p.Format = p.MimeType
	}
	format, ok := parseFormat(p.Format)
	if !ok {
		e.audioFail(ev, c, p.GroupID, CodeAudioFormat, "unsupported audio format")
		return
	}
	sessionID, ok := c.groupSession(p.GroupID)
	if !ok && validID(p.SessionID) {
		// Staff that joined the session may stream for one of its groups once the service agrees.
		if _, joined := c.joinedSession(p.SessionID); joined {
			if resp, code, msg := e.authorize(c, p.SessionID, p.GroupID); resp == nil {
				e.audioFail(ev, c, p.GroupID, code, msg)
				return
			}
			sessionID, ok = p.SessionID, true
		}
	}
	if !ok {
		e.audioFail(ev, c, p.GroupID, CodeNotJoined, "join the group first")
		return
	}
	school, _ := c.joinedSession(sessionID)
	if school == "" {
		school = c.principal.SchoolID
	}
	if _, err := e.openAudio(ev.Socket(), c, sessionID, p.GroupID, school, format, p.SampleRate); err != nil {
		if errors.Is(err, errAudioBusy) {
			e.audioFail(ev, c, p.GroupID, CodeAudioBusy, "another connection is streaming this group's audio")
			return
		}
		e.logger.Warn("ws: opening audio stream", "err", err, "groupId", p.GroupID, "traceId", c.traceID)
		e.audioFail(ev, c, p.GroupID, CodeAudioUnavailable, "transcription is temporarily unavailable")
		return
	}
	e.ok(ev, c, map[string]any{"groupId": p.GroupID})
}

var errAudioBusy = errors.New("edge: group audio stream owned by another socket")

func (e *Edge) openAudio(s *socketio.Socket, c *conn, sessionID, groupID, schoolID string, format sttv1.AudioFormat,
	rate int32) (*audioStream, error) {
	e.audioMu.Lock()
	if cur, ok := e.audio[groupID]; ok {
		e.audioMu.Unlock()
		if cur.owner == c {
			return cur, nil
		}
		return nil, errAudioBusy
	}
	// Reserve the slot while the stream opens.
	ctx, cancel := context.WithCancel(context.Background())
	a := &audioStream{groupID: groupID, sessionID: sessionID, schoolID: schoolID, owner: c, socket: s, cancel: cancel, done: make(chan struct{})}
	e.audio[groupID] = a
	e.audioMu.Unlock()

	release := func() {
		cancel()
		e.audioMu.Lock()
		if e.audio[groupID] == a {
			delete(e.audio, groupID)
		}
		e.audioMu.Unlock()
	}
	stream, err := e.stt.StreamAudio(ctx)
	if err == nil {
		err = stream.Send(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Start{Start: &sttv1.AudioStart{
			SessionId: sessionID, GroupId: groupID, SchoolId: schoolID, Format: format, SampleRate: rate,
			TraceId:      c.traceID, // stt's transcripts and alerts for the group carry the student's trace
			RefusalsOnly: true,      // accepted chunks need no answer: receiveAudio acts on refusals only
		}}})
	}
	if err != nil {
		release()
		return nil, err
	}
	a.mu.Lock()
	a.stream = stream
	a.mu.Unlock()
	c.mu.Lock()
	c.audio[groupID] = a
	c.mu.Unlock()
	go e.receiveAudio(a, c, release)
	return a, nil
}

// receiveAudio reads the stt answers of a stream, reporting refused chunks to the socket.
func (e *Edge) receiveAudio(a *audioStream, c *conn, release func()) {
	defer close(a.done)
	defer release()
	defer func() {
		c.mu.Lock()
		if c.audio[a.groupID] == a {
			delete(c.audio, a.groupID)
		}
		c.mu.Unlock()
	}()
	for {
		resp, err := a.stream.Recv()
		if err != nil {
			a.mu.Lock()
			stopped := a.closed
			a.closed = true
			a.mu.Unlock()
			if !stopped && !errors.Is(err, io.EOF) {
				e.logger.Warn("ws: audio stream ended", "err", err, "groupId", a.groupID, "traceId", c.traceID)
				e.emit(a.socket, "audio:error", map[string]any{"groupId": a.groupID, "code": CodeAudioUnavailable,
					"message": "transcription stream ended", "schemaVersion": SchemaVersion, "traceId": c.traceID})
			}
			return
		}
		if r := resp.GetRefused(); r != nil {
			e.emit(a.socket, "audio:error", map[string]any{"groupId": a.groupID, "code": r.GetReason(),
				"message": r.GetMessage(), "seq": r.GetSeq(), "schemaVersion": SchemaVersion, "traceId": c.traceID})
		}
	}
}

func (e *Edge) onAudioChunk(ev *socketio.Event, c *conn) {
	groupID, audio, refusal := audioChunkArgs(ev.Args)
	if refusal != "" {
		e.audioFail(ev, c, groupID, CodeInvalidPayload, refusal)
		return
	}
	if !e.cfg.UnifiedSTT {
		return // the seed ignores audio when namespaced STT is off
	}
	if len(audio) == 0 {
		e.audioFail(ev, c, groupID, CodeInvalidPayload, "audioData is empty")
		return
	}
	if len(audio) > e.cfg.MaxAudioChunkBytes {
		e.audioFail(ev, c, groupID, CodeAudioTooLarge, "audio chunk exceeds the size limit")
		return
	}
	c.mu.Lock()
	a := c.audio[groupID]
	c.mu.Unlock()
	if a == nil {
		e.audioFail(ev, c, groupID, CodeAudioNotStarted, "send audio:start first")
		return
	}
	school := quotaSchool(c, a)
	if ok, retry, hint := e.admitAudio(c, school, a.sessionID, len(audio)); !ok {
		e.dropAudio(ev, c, groupID, school, retry, hint)
		return
	}
	seq, err := a.send(audio)
	if err != nil {
		e.audioFail(ev, c, groupID, CodeAudioUnavailable, "transcription is temporarily unavailable")
		return
	}
	e.metrics.audioBytes.WithLabelValues(schoolLabel(school)).Add(float64(len(audio)))
	if ev.HasAck() {
		e.ok(ev, c, map[string]any{"groupId": groupID, "seq": seq})
	}
}

// audioChunkArgs reads an audio:chunk's argument, {groupId, audioData}: audioData is a binary attachment
// (a Buffer), taken as is, or a base64 string. A refusal (with CodeInvalidPayload) is returned with the
// groupId that it reports, whatever could be read of it.
//
// The argument is read as encoding/json would decode it into a struct of a string GroupID and a
// json.RawMessage Audio, but by Args.UnmarshalFields, which allocates only the groupId string: chunks
// come ten times a second per student, and encoding/json's decoding was most of what the edge allocated
// per chunk. The rare base64 audio is still decoded by encoding/json.
func audioChunkArgs(args socketio.Args) (groupID string, audio []byte, refusal string) {
	var raw json.RawMessage
	if args.Len() < 1 || args.UnmarshalFields(0, socketio.StringField("groupId", &groupID),
		socketio.RawField("audioData", &raw)) != nil || groupID == "" {
		return groupID, nil, "groupId and audioData are required"
	}
	if data, ok := args.Attachment(raw); ok {
		return groupID, data, ""
	}
	if len(raw) == 0 {
		return groupID, nil, "" // no audioData: empty audio, which onAudioChunk refuses only when it takes audio
	}
	audio, ok := decodeBase64Audio(raw)
	if !ok {
		return groupID, nil, "audioData must be binary (a Buffer) or base64"
	}
	return groupID, audio, ""
}

// decodeBase64Audio decodes a JSON value as encoding/json decodes it into a []byte (null into nil). It is
// a function of its own so that the slice it decodes into is allocated only when it is called.
func decodeBase64Audio(raw json.RawMessage) ([]byte, bool) {
	var audio []byte
	if json.Unmarshal(raw, &audio) != nil {
		return nil, false
	}
	return audio, true
}

func (e *Edge) onAudioStop(ev *socketio.Event, c *conn) {
	p, ok := decodeIDs(ev, "groupId")
	if !ok || p.GroupID == "" {
		e.audioFail(ev, c, "", CodeInvalidPayload, "groupId is required")
		return
	}
	e.stopSocketAudio(c, p.GroupID)
	e.ok(ev, c, map[string]any{"groupId": p.GroupID})
}

// stopSocketAudio stops c's stream for groupID, if any, without blocking the caller.
func (e *Edge) stopSocketAudio(c *conn, groupID string) {
	c.mu.Lock()
	a := c.audio[groupID]
	delete(c.audio, groupID)
	c.mu.Unlock()
	if a != nil {
		go a.stop(context.Background())
	}
}

// closeSocketAudio stops every stream of c (on disconnect).
func (e *Edge) closeSocketAudio(c *conn) {
	c.mu.Lock()
	groups := make([]string, 0, len(c.audio))
	for g := range c.audio {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	for _, g := range groups {
		e.stopSocketAudio(c, g)
	}
}

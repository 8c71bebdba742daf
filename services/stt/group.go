package stt

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/services/stt/audio"
	"github.com/classwaves/classwaves/services/stt/whisper"
)

// maxWindowBytes keeps every window under the API's 25 MB file limit: a chunk that would take
// the open window past it closes the window first.
const maxWindowBytes = whisper.MaxFileBytes - 64<<10

// Stream errors.
var (
	// ErrUnavailable: the service is not running (not started, or shutting down).
	ErrUnavailable = apperr.New(codes.Unavailable, "STT_UNAVAILABLE", "speech-to-text is not available right now")
	// ErrSuperseded: a newer stream took over the group.
	ErrSuperseded = apperr.New(codes.Aborted, "AUDIO_STREAM_SUPERSEDED", "a newer audio stream took over this group")
)

type groupKey struct{ session, group string }

// StreamStart opens a group's stream.
type StreamStart struct {
	SessionID, GroupID, SchoolID string
	Format                       audio.Format
	// SampleRate is a PCM16 stream's rate.
	SampleRate int
	Language   string
	TraceID    string
}

// WindowInfo describes a closed window.
type WindowInfo struct {
	ID         string
	Start, End time.Time
	Bytes      int
}

// group is one group's audio: the open window of its current stream, and the chain of its closed
// windows' transcriptions (kept in order, so each can use the previous one's text as prompt and
// events leave in order).
type group struct {
	key groupKey

	mu sync.Mutex
	// owner is the stream feeding the group (nil when none).
	owner *Stream
	asm   audio.Assembler
	// school, language, traceID come from the owner's start.
	school, language, traceID string
	// winStart is when the open window's audio starts; winOpened the wall clock of its first
	// chunk (for the sweeper); prevEnd when the stream's last window ended.
	winStart, winOpened, prevEnd time.Time
	// held is the open window's size as counted in stt_window_bytes.
	held    int
	lastSeq int64
	// notices are closed windows the owner has not reported yet.
	notices []WindowInfo
	// ttftStart is the owner's first accepted chunk; ttftDone once its first transcript went out.
	ttftStart time.Time
	ttftDone  bool

	// tail closes when the last transcribing job finished; actTail when the last job published
	// its speech activity. Each job waits for the previous one's.
	tail, actTail chan struct{}
	// pending counts jobs not finished.
	pending int
	// prompt is the tail of the group's last transcript.
	prompt string
	// jobCtx is the context of the group's jobs; cancelled to abandon them (drain timeout).
	jobCtx    context.Context
	jobCancel context.CancelFunc
}

// Stream is an open audio stream of one group.
type Stream struct {
	svc    *Service
	g      *group
	closed bool
}

// OpenStream starts a group's stream. A stream already open for the group is superseded: its
// window is closed and its next chunk ends it with ErrSuperseded.
func (s *Service) OpenStream(start StreamStart) (*Stream, error) {
	asm, err := audio.New(start.Format, audio.Options{SampleRate: start.SampleRate, WindowHint: s.cfg.window()})
	if err != nil {
		return nil, err
	}
	key := groupKey{strings.ToLower(start.SessionID), strings.ToLower(start.GroupID)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return nil, ErrUnavailable
	}
	g := s.groups[key]
	if g == nil {
		g = &group{key: key}
		g.jobCtx, g.jobCancel = context.WithCancel(s.runCtx)
		s.groups[key] = g
	}
	st := &Stream{svc: s, g: g}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owner != nil {
		s.cutLocked(g)
		g.asm.Release()
	} else {
		s.m.streams.Inc()
	}
	g.owner, g.asm = st, asm
	g.school, g.traceID = start.SchoolID, start.TraceID
	g.language = start.Language
	if g.language == "" {
		g.language = s.cfg.Language
	}
	g.lastSeq, g.notices, g.ttftStart, g.ttftDone, g.prevEnd = 0, nil, time.Time{}, false, time.Time{}
	return st, nil
}

// ChunkResult is the answer to one chunk.
type ChunkResult struct {
	// Refused is set (a *audio.ChunkError) when the chunk was not taken.
	Refused *audio.ChunkError
	// WindowBytes is the open window's size after the chunk.
	WindowBytes int
}

// Chunk adds a chunk to the group's open window, closing the window when it holds
// STT_WINDOW_SECONDS of audio. seq (when not 0) must increase; capturedAt (when not zero) dates
// the window's start.
func (st *Stream) Chunk(data []byte, seq int64, capturedAt time.Time) (ChunkResult, error) {
	s, g := st.svc, st.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owner != st {
		return ChunkResult{}, ErrSuperseded
	}
	refuse := func(reason, msg string) (ChunkResult, error) {
		s.m.chunksRefused.WithLabelValues(reason).Inc()
		return ChunkResult{Refused: &audio.ChunkError{Reason: reason, Msg: msg}, WindowBytes: g.asm.Len()}, nil
	}
	if seq > 0 && g.lastSeq > 0 && seq <= g.lastSeq {
		return refuse("AUDIO_OUT_OF_ORDER", "chunk sequence numbers must increase")
	}
	if g.asm.Duration() > 0 && g.asm.Len()+len(data) > maxWindowBytes {
		s.cutLocked(g)
	}
	empty := g.asm.Duration() == 0
	if err := g.asm.Append(data); err != nil {
		var ce *audio.ChunkError
		if errors.As(err, &ce) {
			return refuse(ce.Reason, ce.Msg)
		}
		return refuse(audio.ReasonCorrupt, "the chunk could not be read")
	}
	if seq > 0 {
		g.lastSeq = seq
	}
	now := s.now()
	if g.ttftStart.IsZero() {
		g.ttftStart = time.Now()
	}
	s.m.chunkBytes.Add(float64(len(data)))
	if sealed := g.asm.TakeSealed(); sealed != nil {
		// The stream restarted (a new container header): the window before it is done.
		s.windowLocked(g, sealed)
		empty = true
	}
	if empty && g.asm.Duration() > 0 {
		// A window's audio starts when it was captured, else where the stream's previous window
		// ended when the audio is continuous, else now.
		g.winOpened = time.Now()
		switch {
		case !capturedAt.IsZero():
			g.winStart = capturedAt.UTC()
		case !g.prevEnd.IsZero() && now.Sub(g.prevEnd) < s.cfg.window():
			g.winStart = g.prevEnd
		default:
			g.winStart = now
		}
	}
	if g.asm.Duration() >= s.cfg.window() {
		s.cutLocked(g)
	}
	s.trackBytesLocked(g)
	return ChunkResult{WindowBytes: g.asm.Len()}, nil
}

// Stop closes the open window early (audio:stop); the stream stays open.
func (st *Stream) Stop() error {
	g := st.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owner != st {
		return ErrSuperseded
	}
	st.svc.cutLocked(g)
	return nil
}

// TakeNotices returns the windows closed since the last call.
func (st *Stream) TakeNotices() []WindowInfo {
	g := st.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owner != st {
		return nil
	}
	n := g.notices
	g.notices = nil
	return n
}

// Close ends the stream: its open window is closed and handed to transcription. It returns the
// windows closed since the last TakeNotices, the last one included.
func (st *Stream) Close() []WindowInfo {
	s, g := st.svc, st.g
	g.mu.Lock()
	if st.closed {
		g.mu.Unlock()
		return nil
	}
	st.closed = true
	var notices []WindowInfo
	if g.owner == st {
		s.cutLocked(g)
		g.asm.Release()
		g.owner, g.asm = nil, nil
		s.trackBytesLocked(g)
		s.m.streams.Dec()
		notices, g.notices = g.notices, nil
	}
	g.mu.Unlock()
	s.tryRemove(g)
	return notices
}

// closeWindow closes g's open window; it returns 1 if there was one.
func (s *Service) closeWindow(g *group) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.asm == nil || g.asm.Duration() == 0 {
		return 0
	}
	s.cutLocked(g)
	return 1
}

// cutLocked closes the open window, if it holds audio, and hands it on.
func (s *Service) cutLocked(g *group) {
	if g.asm == nil {
		return
	}
	if w := g.asm.Cut(); w != nil {
		s.windowLocked(g, w)
	}
	s.trackBytesLocked(g)
}

// trackBytesLocked brings stt_window_bytes up to date with g's open window.
func (s *Service) trackBytesLocked(g *group) {
	n := 0
	if g.asm != nil {
		n = g.asm.Len()
	}
	if n != g.held {
		s.m.windowBytes.Add(float64(n - g.held))
		g.held = n
	}
}

// windowLocked turns a closed window into a job and starts it.
func (s *Service) windowLocked(g *group, w *audio.Window) {
	start := g.winStart
	if start.IsZero() {
		start = s.now().Add(-w.Duration)
	}
	j := &windowJob{
		id:         uuid.Must(uuid.NewV7()).String(),
		g:          g,
		school:     g.school,
		language:   g.language,
		traceID:    g.traceID,
		win:        w,
		start:      start,
		end:        start.Add(w.Duration),
		closedAt:   time.Now(),
		transcribe: s.transcriber != nil,
		ctx:        g.jobCtx,
		done:       make(chan struct{}),
		actDone:    make(chan struct{}),
		prevAct:    g.actTail,
		ttftStart:  g.ttftStart,
	}
	g.notices = append(g.notices, WindowInfo{ID: j.id, Start: j.start, End: j.end, Bytes: len(w.File)})
	g.prevEnd, g.winStart = j.end, time.Time{}
	if j.transcribe && g.pending >= s.cfg.MaxPendingWindows {
		j.transcribe = false
		s.m.windows.WithLabelValues(outcomeBacklog).Inc()
		s.logger.Warn("stt: transcription backlog full; window dropped", "sessionId", g.key.session, "groupId", g.key.group, "pending", g.pending)
	}
	if j.transcribe {
		j.prev = g.tail
		g.tail = j.done
	}
	g.actTail = j.actDone
	g.pending++
	if !s.spawn(j) {
		g.pending--
		close(j.done)
		close(j.actDone)
		w.Release()
		s.m.windows.WithLabelValues(outcomeDrain).Inc()
	}
}

// tryRemove forgets g once no stream feeds it and no job of it is left.
func (s *Service) tryRemove(g *group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owner == nil && g.pending == 0 && s.groups[g.key] == g {
		delete(s.groups, g.key)
		g.jobCancel()
	}
}

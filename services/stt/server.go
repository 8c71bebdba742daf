package stt

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
	"github.com/classwaves/classwaves/services/stt/audio"
)

// Default and largest ListTranscripts page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 500
)

// Errors the gRPC server answers, with their stable reasons.
var (
	// ErrStartRequired: the stream's first message is not a start.
	ErrStartRequired = apperr.New(codes.FailedPrecondition, "AUDIO_START_REQUIRED", "the first message of an audio stream must be start")
	// ErrAlreadyStarted: a second start on one stream.
	ErrAlreadyStarted = apperr.New(codes.FailedPrecondition, "AUDIO_ALREADY_STARTED", "the audio stream has already started")
	// ErrInvalidStart: a start the service cannot take (a field violation says which field).
	ErrInvalidStart = apperr.New(codes.InvalidArgument, apperr.ReasonValidation, "the audio stream start is not valid")
	// ErrInvalidPageToken: page_token is not one this service issued.
	ErrInvalidPageToken = apperr.New(codes.InvalidArgument, "INVALID_PAGE_TOKEN", "the page token is not valid")
	// ErrSchoolRequired: a caller without a school asked for budget usage without naming one.
	ErrSchoolRequired = apperr.New(codes.InvalidArgument, apperr.ReasonValidation, "school_id is required")
	// ErrStoreUnavailable: the database cannot be reached.
	ErrStoreUnavailable = apperr.New(codes.Unavailable, "STT_STORE_UNAVAILABLE", "transcripts are temporarily unavailable")
)

// server is the gRPC port: requests arrive authenticated and validated (interceptors), it calls
// the domain and maps errors once.
type server struct {
	sttv1.UnimplementedSttServiceServer
	svc *Service
}

var _ sttv1.SttServiceServer = (*server)(nil)

var formats = map[sttv1.AudioFormat]audio.Format{
	sttv1.AudioFormat_AUDIO_FORMAT_PCM16:     audio.FormatPCM16,
	sttv1.AudioFormat_AUDIO_FORMAT_WAV:       audio.FormatWAV,
	sttv1.AudioFormat_AUDIO_FORMAT_WEBM_OPUS: audio.FormatWebMOpus,
	sttv1.AudioFormat_AUDIO_FORMAT_OGG_OPUS:  audio.FormatOggOpus,
}

// StreamAudio carries one group's audio (internal: the realtime edge). Every chunk is answered,
// accepted or refused; closed windows are reported after the message that closed them. The end
// of the stream (or its cancellation) closes the open window, which is still transcribed.
func (s *server) StreamAudio(stream grpc.BidiStreamingServer[sttv1.StreamAudioRequest, sttv1.StreamAudioResponse]) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return ErrStartRequired
	}
	ss := StreamStart{
		SessionID:  start.GetSessionId(),
		GroupID:    start.GetGroupId(),
		SchoolID:   start.GetSchoolId(),
		Format:     formats[start.GetFormat()],
		SampleRate: int(start.GetSampleRate()),
		Language:   start.GetLanguage(),
		TraceID:    start.GetTraceId(),
	}
	if strings.TrimSpace(ss.SchoolID) == "" {
		return ErrInvalidStart.WithField("start.school_id", "is required: budgets are per school")
	}
	st, err := s.svc.OpenStream(ss)
	if err != nil {
		var ce *audio.ChunkError
		if errors.As(err, &ce) {
			return ErrInvalidStart.WithField("start.sample_rate", ce.Msg)
		}
		return err
	}
	defer st.Close()
	refusalsOnly := start.GetRefusalsOnly()
	send := func(notices []WindowInfo) error {
		for _, w := range notices {
			if err := stream.Send(&sttv1.StreamAudioResponse{Message: &sttv1.StreamAudioResponse_WindowClosed{WindowClosed: &sttv1.WindowClosed{
				WindowId:    w.ID,
				WindowStart: timestamppb.New(w.Start),
				WindowEnd:   timestamppb.New(w.End),
				Bytes:       int64(w.Bytes),
			}}}); err != nil {
				return err
			}
		}
		return nil
	}
	// Every further message is received into req, which reuses its storage for chunks.
	req := newAudioRequest()
	defer req.release()
	for {
		err := stream.RecvMsg(req)
		if errors.Is(err, io.EOF) {
			return send(st.Close())
		}
		if err != nil {
			return err
		}
		switch m := req.GetMessage().(type) {
		case *sttv1.StreamAudioRequest_Chunk:
			c := m.Chunk
			var captured time.Time
			if ts := c.GetCapturedAt(); ts != nil {
				captured = ts.AsTime()
			}
			res, err := st.Chunk(c.GetData(), c.GetSeq(), captured)
			if err != nil {
				return err
			}
			var resp *sttv1.StreamAudioResponse
			switch {
			case res.Refused != nil:
				resp = &sttv1.StreamAudioResponse{Message: &sttv1.StreamAudioResponse_Refused{Refused: &sttv1.ChunkRefused{
					Seq: c.GetSeq(), Reason: res.Refused.Reason, Message: res.Refused.Msg,
				}}}
			case !refusalsOnly:
				resp = &sttv1.StreamAudioResponse{Message: &sttv1.StreamAudioResponse_Accepted{Accepted: &sttv1.ChunkAccepted{
					Seq: c.GetSeq(), WindowBytes: int64(res.WindowBytes),
				}}}
			}
			if resp != nil {
				if err := stream.Send(resp); err != nil {
					return err
				}
			}
		case *sttv1.StreamAudioRequest_Stop:
			if err := st.Stop(); err != nil {
				return err
			}
		case *sttv1.StreamAudioRequest_Start:
			return ErrAlreadyStarted
		}
		if err := send(st.TakeNotices()); err != nil {
			return err
		}
	}
}

// FlushGroups closes and drains a session's open windows (internal: the session service, at
// session end).
func (s *server) FlushGroups(ctx context.Context, req *sttv1.FlushGroupsRequest) (*sttv1.FlushGroupsResponse, error) {
	res, err := s.svc.Flush(ctx, req.GetSessionId(), req.GetGroupIds(), msDuration(req.GetTimeoutMs()))
	if err != nil {
		return nil, err
	}
	return &sttv1.FlushGroupsResponse{WindowsFlushed: int32(res.WindowsFlushed), TimedOutGroupIds: res.TimedOut}, nil
}

// ListTranscripts lists a session's transcripts in window order, or one group's. Staff only (the
// policy); a teacher or admin sees only sessions of their own school. A session without
// transcripts lists empty, whoever asks.
func (s *server) ListTranscripts(ctx context.Context, req *sttv1.ListTranscriptsRequest) (*sttv1.ListTranscriptsResponse, error) {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return nil, authn.ErrUnauthenticated
	}
	session := strings.ToLower(req.GetSessionId())
	school, found, err := s.svc.store.SessionSchool(ctx, session)
	if err != nil {
		return nil, storeError(ctx, err)
	}
	if !found {
		return &sttv1.ListTranscriptsResponse{}, nil
	}
	if err := authn.SameSchool(p, school); err != nil {
		return nil, err
	}
	q := TranscriptQuery{SessionID: session, GroupID: strings.ToLower(req.GetGroupId()), Limit: int(req.GetLimit())}
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	q.Limit = min(q.Limit, MaxPageSize)
	if req.GetSince() != nil {
		q.Since = req.GetSince().AsTime()
	}
	if tok := req.GetPageToken(); tok != "" {
		c, err := DecodePageToken(tok)
		if err != nil {
			return nil, ErrInvalidPageToken.WithCause(err).WithField("page_token", "not a token from a previous page")
		}
		q.After = &c
	}
	page, err := s.svc.store.ListTranscripts(ctx, q)
	if err != nil {
		return nil, storeError(ctx, err)
	}
	resp := &sttv1.ListTranscriptsResponse{Transcripts: make([]*sttv1.Transcript, 0, len(page.Transcripts))}
	for _, t := range page.Transcripts {
		resp.Transcripts = append(resp.Transcripts, transcriptToProto(t))
	}
	if page.Next != nil {
		resp.NextPageToken = EncodePageToken(*page.Next)
	}
	return resp, nil
}

// GetBudgetUsage reports a school's minutes today. The caller's own school by default; only a
// super admin may name another.
func (s *server) GetBudgetUsage(ctx context.Context, req *sttv1.GetBudgetUsageRequest) (*sttv1.GetBudgetUsageResponse, error) {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return nil, authn.ErrUnauthenticated
	}
	school := req.GetSchoolId()
	if school == "" {
		school = p.SchoolID
	}
	if school == "" {
		return nil, ErrSchoolRequired.WithField("school_id", "is required for a caller without a school")
	}
	if err := authn.SameSchool(p, school); err != nil {
		return nil, err
	}
	today := day(s.svc.now())
	s.svc.budget.save(ctx)
	u, err := s.svc.store.Usage(ctx, school, today)
	if err != nil {
		return nil, storeError(ctx, err)
	}
	resp := &sttv1.GetBudgetUsageResponse{
		SchoolId:      school,
		Day:           today,
		MinutesUsed:   u.Seconds / 60,
		MinutesBudget: s.svc.cfg.BudgetMinutesPerDay,
	}
	for _, a := range u.AlertsSent {
		resp.AlertsSent = append(resp.AlertsSent, int32(a))
	}
	if resp.MinutesBudget > 0 {
		resp.PercentUsed = 100 * resp.MinutesUsed / resp.MinutesBudget
		resp.Exhausted = resp.MinutesUsed >= resp.MinutesBudget
	}
	return resp, nil
}

func transcriptToProto(t Transcript) *sttv1.Transcript {
	out := &sttv1.Transcript{
		Id:            t.ID,
		SessionId:     t.SessionID,
		GroupId:       t.GroupID,
		WindowStart:   timestamppb.New(t.WindowStart),
		WindowEnd:     timestamppb.New(t.WindowEnd),
		Text:          t.Text,
		Confidence:    t.Confidence,
		Language:      t.Language,
		SpeechSeconds: t.SpeechSeconds,
		CreatedAt:     timestamppb.New(t.CreatedAt),
	}
	for _, s := range t.Segments {
		out.Segments = append(out.Segments, &sttv1.Segment{
			Start: s.Start, End: s.End, Text: s.Text, Confidence: s.Confidence,
			AvgLogprob: s.AvgLogprob, NoSpeechProb: s.NoSpeechProb,
		})
	}
	return out
}

// storeError maps a store failure: the caller's cancellation stays what it is, anything else is
// the database being unavailable (the cause goes to the log, not the client).
func storeError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return ErrStoreUnavailable.WithCause(err)
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

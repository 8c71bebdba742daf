package stt

import (
	"context"
	"time"

	"github.com/classwaves/classwaves/pkg/store"
)

// Transcript is a stored transcription of one window (audio.transcriptions).
type Transcript struct {
	// ID is the window's id (a UUID); storing is idempotent by it.
	ID        string
	SessionID string
	GroupID   string
	SchoolID  string
	// WindowStart and WindowEnd are kept to the microsecond, in UTC.
	WindowStart time.Time
	WindowEnd   time.Time
	Text        string
	// Confidence is 0..1, duration-weighted over Segments.
	Confidence float64
	Language   string
	Segments   []Segment
	// SpeechSeconds is voice activity detection's speech in the window (0 for Opus windows).
	SpeechSeconds float64
	CreatedAt     time.Time
}

// Segment is a kept Whisper segment; times are seconds from the window start.
type Segment struct {
	Start        float64 `json:"start"`
	End          float64 `json:"end"`
	Text         string  `json:"text"`
	Confidence   float64 `json:"confidence"`
	AvgLogprob   float64 `json:"avgLogprob"`
	NoSpeechProb float64 `json:"noSpeechProb"`
}

// TranscriptQuery selects a session's transcripts in window order (window_start, id).
type TranscriptQuery struct {
	SessionID string
	// GroupID limits the listing to one group ("" for all).
	GroupID string
	// Since keeps windows starting at or after it (zero: all).
	Since time.Time
	// After continues a listing after this cursor.
	After *Cursor
	// Limit is the most transcripts returned (> 0).
	Limit int
}

// Cursor is a position in the (window_start, id) order.
type Cursor struct {
	WindowStart time.Time
	ID          string
}

// TranscriptPage is one page of a listing.
type TranscriptPage struct {
	Transcripts []Transcript
	// Next continues the listing; nil on the last page.
	Next *Cursor
}

// Usage is a school's transcription use on one UTC day (audio.budgets, audio.budget_alerts).
type Usage struct {
	Seconds float64
	// AlertsSent are the thresholds already alerted, ascending.
	AlertsSent []int
}

// Store is the stt service's persistence port. Adapters: the SQL store (SQLite and PostgreSQL,
// sqlstore.go); one contract suite (store_contract_test.go) runs against each.
type Store interface {
	// InsertTranscript stores t; a transcript whose id is stored already is left as it is.
	InsertTranscript(ctx context.Context, t Transcript) error
	// ListTranscripts returns the page q selects.
	ListTranscripts(ctx context.Context, q TranscriptQuery) (TranscriptPage, error)
	// SessionSchool returns the school of a session's stored transcripts; found is false when
	// the session has none.
	SessionSchool(ctx context.Context, sessionID string) (school string, found bool, err error)
	// AddUsage adds seconds to a school's day, atomically, unless limit > 0 and the day's use is
	// already at or over limit. It returns the use after the call and whether it added.
	AddUsage(ctx context.Context, schoolID, day string, seconds, limit float64) (used float64, added bool, err error)
	// RefundUsage takes seconds back (never below zero), for a window that was not transcribed.
	RefundUsage(ctx context.Context, schoolID, day string, seconds float64) error
	// ClaimAlert records that the percent alert of a school's day is sent; claimed is false when
	// it was already (by this process or another replica), so each alert goes out once.
	ClaimAlert(ctx context.Context, schoolID, day string, percent int) (claimed bool, err error)
	// Usage returns a school's use of a day.
	Usage(ctx context.Context, schoolID, day string) (Usage, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
}

// EncodePageToken renders c as an opaque page token (store.EncodeCursor).
func EncodePageToken(c Cursor) string {
	return store.EncodeCursor(store.Cursor{At: c.WindowStart, ID: c.ID})
}

// DecodePageToken parses a token made by EncodePageToken.
func DecodePageToken(tok string) (Cursor, error) {
	c, err := store.DecodeCursor(tok)
	if err != nil {
		return Cursor{}, err
	}
	return Cursor{WindowStart: c.At, ID: c.ID}, nil
}

package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Record is one row of the audit log: an audited event, or a rollup row standing for Count
// sampled-out events of one minute.
type Record struct {
	// ID is a UUID; storing is idempotent by it.
	ID string
	// OccurredAt is kept to the microsecond (PostgreSQL's precision), in UTC.
	OccurredAt      time.Time
	ActorID         string
	ActorType       string
	EventType       string
	Category        string
	ResourceType    string
	ResourceID      string
	SchoolID        string
	SessionID       string
	Description     string
	UserAgentHash   string
	ComplianceBasis string
	Priority        string
	Metadata        map[string]string
	// Count is how many events the row stands for: 1 for an event, more for a rollup.
	Count int
}

// Query selects records, newest first. Empty fields do not filter.
type Query struct {
	SchoolID  string
	ActorID   string
	EventType string
	Category  string
	SessionID string
	// From is inclusive, To exclusive; zero values leave the range open.
	From, To time.Time
	// After continues a listing: only records strictly older than the cursor (in the
	// (occurred_at, id) order) are returned.
	After *Cursor
	// Limit is the most records returned (> 0).
	Limit int
}

// Cursor is a position in the (occurred_at desc, id desc) order.
type Cursor struct {
	OccurredAt time.Time
	ID         string
}

// Page is one page of a listing.
type Page struct {
	Records []Record
	// Next is the cursor of the next page; nil when this is the last one.
	Next *Cursor
}

// Store is the audit log's persistence port. Adapters: the SQL store (SQLite and PostgreSQL, see
// sqlstore.go); one contract suite (store_contract_test.go) runs against every adapter.
type Store interface {
	// Insert stores recs in one transaction, skipping any whose id is already stored (also within
	// recs), and returns how many were new. Nothing is stored when it fails. An error wrapping
	// ErrRejected means the database refused the data itself (a constraint or a value it cannot
	// hold), so retrying the same rows cannot help; any other error may be transient.
	Insert(ctx context.Context, recs []Record) (inserted int, err error)
	// Query returns the page q selects.
	Query(ctx context.Context, q Query) (Page, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
}

// ErrRejected is wrapped by Store.Insert errors caused by the rows' content rather than by the
// database being unreachable.
var ErrRejected = errors.New("audit store: rows rejected")

// Page tokens are opaque to clients: base64url of "v1|<unix micros>|<id>".
const pageTokenVersion = "v1"

// EncodePageToken renders c as an opaque page token.
func EncodePageToken(c Cursor) string {
	raw := pageTokenVersion + "|" + strconv.FormatInt(c.OccurredAt.UnixMicro(), 10) + "|" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodePageToken parses a token made by EncodePageToken.
func DecodePageToken(tok string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return Cursor{}, fmt.Errorf("page token: %w", err)
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 || parts[0] != pageTokenVersion {
		return Cursor{}, errors.New("page token: unknown format")
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("page token: time: %w", err)
	}
	id, err := uuid.Parse(parts[2])
	if err != nil || id.String() != parts[2] {
		return Cursor{}, errors.New("page token: id is not a canonical UUID")
	}
	return Cursor{OccurredAt: time.UnixMicro(micros).UTC(), ID: parts[2]}, nil
}

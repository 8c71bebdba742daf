package audit

import (
	"context"
	"errors"
	"time"

	"github.com/classwaves/classwaves/pkg/store"
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

// EncodePageToken renders c as an opaque page token (store.EncodeCursor).
func EncodePageToken(c Cursor) string {
	return store.EncodeCursor(store.Cursor{At: c.OccurredAt, ID: c.ID})
}

// DecodePageToken parses a token made by EncodePageToken.
func DecodePageToken(tok string) (Cursor, error) {
	c, err := store.DecodeCursor(tok)
	if err != nil {
		return Cursor{}, err
	}
	return Cursor{OccurredAt: c.At, ID: c.ID}, nil
}

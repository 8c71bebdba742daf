package store

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Cursor is a keyset-paging position: the time and id of the last row of a page (rows ordered by
// time, then id). Services turn it into the opaque page_token their list RPCs answer.
type Cursor struct {
	At time.Time
	ID string
}

// cursorVersion prefixes every encoded cursor, so the format can change without breaking tokens
// clients still hold.
const cursorVersion = "v1"

// EncodeCursor renders c as an opaque page token: base64url of "v1|<unix micros>|<id>".
func EncodeCursor(c Cursor) string {
	raw := cursorVersion + "|" + strconv.FormatInt(c.At.UnixMicro(), 10) + "|" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor parses a token made by EncodeCursor. The id must be a canonical UUID, so a decoded
// cursor is always safe to bind into a query.
func DecodeCursor(tok string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return Cursor{}, fmt.Errorf("page token: %w", err)
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 || parts[0] != cursorVersion {
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
	return Cursor{At: time.UnixMicro(micros).UTC(), ID: parts[2]}, nil
}

// Time scans a time column stored either way the adapters store times: a timestamp (PostgreSQL) or
// Unix microseconds (SQLite). T is always UTC.
type Time struct{ T time.Time }

// Scan implements sql.Scanner.
func (d *Time) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		d.T = x.UTC()
	case int64:
		d.T = time.UnixMicro(x).UTC()
	default:
		return fmt.Errorf("store: time column of type %T", v)
	}
	return nil
}

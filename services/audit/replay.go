package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/classwaves/classwaves/pkg/bus"
)

// replayPage is how many dead-lettered entries ReplayDLQ handles per round.
const replayPage = 500

// ReplayDLQ brings dead-lettered audit events back (`classwaves audit replay-dlq`; mode is
// AUDIT_DLQ_REPLAY_MODE):
//   - ReplayStream re-publishes each entry's payload to the audit stream (without its dlq-*
//     headers), where the worker stores it; the worker must be running somewhere;
//   - ReplayDB stores the events straight into compliance.audit_log (migrating it first), with
//     no sampling.
//
// It handles the entries the DLQ holds when it starts, oldest first, and deletes each only after
// it was replayed, so it is safe to interrupt and to run again: an entry replayed but not yet
// deleted is replayed again, and storing is idempotent by event id, so no event is stored twice.
// Entries that can never be stored (malformed or invalid payloads, rows the database refuses)
// stay in the DLQ for a human and are logged. It returns how many entries it replayed and
// deleted; with ReplayDB that includes events that had been stored before (a critical event
// dead-lettered while its insert's outcome was unknown). It does not need Start.
func (s *Service) ReplayDLQ(ctx context.Context, mode string) (replayed int, err error) {
	switch mode {
	case ReplayStream, ReplayDB:
	default:
		return 0, fmt.Errorf("audit: replay mode must be one of %s, %s; got %q", ReplayStream, ReplayDB, mode)
	}
	if mode == ReplayDB && s.migrate != nil {
		if err := s.migrate(ctx); err != nil {
			return 0, fmt.Errorf("audit: migrating: %w", err)
		}
	}
	total, err := s.bus.Len(ctx, s.cfg.DLQKey)
	if err != nil {
		return 0, fmt.Errorf("audit: reading the DLQ length: %w", err)
	}
	after, seen, kept := "0", int64(0), 0
	for seen < total {
		msgs, err := s.bus.Replay(ctx, s.cfg.DLQKey, after, int(min(replayPage, total-seen)))
		if err != nil {
			return replayed, fmt.Errorf("audit: reading the DLQ: %w", err)
		}
		if len(msgs) == 0 {
			break
		}
		after = msgs[len(msgs)-1].ID
		seen += int64(len(msgs))
		var done []string
		if mode == ReplayStream {
			done, err = s.replayToStream(ctx, msgs)
		} else {
			done, err = s.replayToDB(ctx, msgs)
		}
		if len(done) > 0 {
			if derr := s.bus.Delete(ctx, s.cfg.DLQKey, done...); derr != nil {
				return replayed, errors.Join(err, fmt.Errorf("audit: deleting replayed DLQ entries: %w", derr))
			}
			replayed += len(done)
			s.m.replayed.WithLabelValues(mode).Add(float64(len(done)))
		}
		kept += len(msgs) - len(done)
		if err != nil {
			return replayed, err
		}
	}
	s.logger.Info("audit DLQ replayed", "mode", mode, "replayed", replayed, "left", kept)
	return replayed, nil
}

// replayToStream re-publishes msgs, returning the ids of those published; it stops at the first
// publish that fails.
func (s *Service) replayToStream(ctx context.Context, msgs []bus.Message) ([]string, error) {
	var done []string
	for _, m := range msgs {
		if _, reason := decodeEvent(m.Payload); reason != "" {
			s.logger.Warn("audit DLQ entry cannot be replayed; left in the DLQ", "entryId", m.ID, "reason", reason)
			continue
		}
		if _, err := s.bus.Publish(ctx, s.cfg.Log.StreamKey, bus.Outgoing{Key: m.Key, Payload: m.Payload, Headers: withoutDLQHeaders(m.Headers)}); err != nil {
			return done, fmt.Errorf("audit: re-publishing DLQ entry %s: %w", m.ID, err)
		}
		done = append(done, m.ID)
	}
	return done, nil
}

// replayToDB stores msgs' events in one transaction, or one by one when the database refuses
// some, returning the ids of the entries whose event is stored.
func (s *Service) replayToDB(ctx context.Context, msgs []bus.Message) ([]string, error) {
	var recs []Record
	var ids []string
	for _, m := range msgs {
		rec, reason := decodeEvent(m.Payload)
		if reason != "" {
			s.logger.Warn("audit DLQ entry cannot be replayed; left in the DLQ", "entryId", m.ID, "reason", reason)
			continue
		}
		recs = append(recs, rec)
		ids = append(ids, m.ID)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	_, err := s.store.Insert(ctx, recs)
	if err == nil {
		return ids, nil
	}
	if !errors.Is(err, ErrRejected) {
		return nil, fmt.Errorf("audit: storing DLQ entries: %w", err)
	}
	var done []string
	for i, rec := range recs {
		_, err := s.store.Insert(ctx, []Record{rec})
		switch {
		case err == nil:
			done = append(done, ids[i])
		case errors.Is(err, ErrRejected):
			s.logger.Warn("audit DLQ entry refused by the database; left in the DLQ", "entryId", ids[i], "err", err)
		default:
			return done, fmt.Errorf("audit: storing DLQ entries: %w", err)
		}
	}
	return done, nil
}

// withoutDLQHeaders returns h without the dlq-* headers the dead-lettering added.
func withoutDLQHeaders(h map[string]string) map[string]string {
	out := maps.Clone(h)
	for k := range out {
		if strings.HasPrefix(k, "dlq-") {
			delete(out, k)
		}
	}
	return out
}

package edge

import (
	"math"
	"time"

	"github.com/classwaves/classwaves/services/realtime/socketio"
)

// CodeAudioBackpressure is the code of the backpressure hint (an audio:error event) and of the ack of a
// dropped chunk.
const CodeAudioBackpressure = "AUDIO_BACKPRESSURE"

const (
	backpressureMessage = "audio is arriving faster than the server accepts it; slow down or pause briefly"
	// quotaSweepEvery is how often idle school and session buckets are forgotten.
	quotaSweepEvery = 30 * time.Second
	unknownSchool   = "unknown"
)

// bucket is a token bucket whose capacity is one second of its rate.
type bucket struct {
	rate   float64 // tokens per second, and capacity
	tokens float64
	last   time.Time
}

func newBucket(rate int, now time.Time) *bucket {
	return &bucket{rate: float64(rate), tokens: float64(rate), last: now}
}

func (b *bucket) refill(now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.rate, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
}

// wait is how long until n tokens can be taken, 0 when they can be now. A request larger than the
// capacity passes once the bucket is full, leaving the bucket in debt.
func (b *bucket) wait(n float64) time.Duration {
	need := min(n, b.rate)
	if b.tokens >= need {
		return 0
	}
	return time.Duration(math.Ceil((need - b.tokens) / b.rate * float64(time.Second)))
}

// socketQuota is one socket's audio rate state, guarded by Edge.quotaMu.
type socketQuota struct {
	events, bytes *bucket
	drops         int // consecutive dropped chunks since the last accepted chunk or hint
	hinted        bool
	lastHint      time.Time
}

func (e *Edge) now() time.Time {
	if e.cfg.Clock != nil {
		return e.cfg.Clock()
	}
	return time.Now()
}

// sharedBucketLocked returns the bucket of key in m, creating it.
func sharedBucketLocked(m map[string]*bucket, key string, rate int, now time.Time) *bucket {
	b, ok := m[key]
	if !ok {
		b = newBucket(rate, now)
		m[key] = b
	}
	return b
}

// sweepLocked forgets school and session buckets idle long enough to be full again.
func (e *Edge) sweepLocked(now time.Time) {
	if now.Sub(e.lastSweep) < quotaSweepEvery {
		return
	}
	e.lastSweep = now
	for _, m := range []map[string]*bucket{e.schoolBuckets, e.sessionBuckets} {
		for k, b := range m {
			if now.Sub(b.last) >= time.Second {
				delete(m, k)
			}
		}
	}
}

// admitAudio charges one chunk of n bytes to the socket's, the school's and the session's buckets,
// all or none. Refused, it reports how long to wait and whether the socket is due a hint.
func (e *Edge) admitAudio(c *conn, schoolID, sessionID string, n int) (ok bool, retry time.Duration, hint bool) {
	now := e.now()
	e.quotaMu.Lock()
	defer e.quotaMu.Unlock()
	e.sweepLocked(now)
	q := &c.quota
	if q.events == nil {
		q.events = newBucket(e.cfg.MaxAudioEventsPerSec, now)
		q.bytes = newBucket(e.cfg.MaxAudioBytesPerSec, now)
	}
	type charge struct {
		b    *bucket
		cost float64
	}
	charges := make([]charge, 0, 4)
	charges = append(charges, charge{q.events, 1}, charge{q.bytes, float64(n)})
	if schoolID != "" {
		charges = append(charges, charge{sharedBucketLocked(e.schoolBuckets, schoolID, e.cfg.SchoolAudioLimit, now), float64(n)})
	}
	if sessionID != "" {
		charges = append(charges, charge{sharedBucketLocked(e.sessionBuckets, sessionID, e.cfg.SessionAudioLimit, now), float64(n)})
	}
	for _, ch := range charges {
		ch.b.refill(now)
		retry = max(retry, ch.b.wait(ch.cost))
	}
	if retry == 0 {
		for _, ch := range charges {
			ch.b.tokens -= ch.cost
		}
		q.drops = 0
		return true, 0, false
	}
	q.drops++
	if q.drops >= e.cfg.BackpressureHintThreshold && (!q.hinted || now.Sub(q.lastHint) >= e.cfg.BackpressureHintCooldown) {
		q.hinted, q.lastHint, q.drops = true, now, 0
		hint = true
	}
	return false, retry, hint
}

// quotaSchool is the school a socket's audio is charged to: the verified principal's, else the
// school of the session the stream belongs to.
func quotaSchool(c *conn, a *audioStream) string {
	if c.principal.SchoolID != "" {
		return c.principal.SchoolID
	}
	return a.schoolID
}

func schoolLabel(school string) string {
	if school == "" {
		return unknownSchool
	}
	return school
}

func retryMillis(d time.Duration) int32 {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return int32(min(max(ms, 1), math.MaxInt32))
}

// dropAudio handles a chunk refused by the rate limits: counted, acked as dropped when the client asked
// for an ack, and answered by a hint when due. Nothing is sent to stt.
func (e *Edge) dropAudio(ev *socketio.Event, c *conn, groupID, school string, retry time.Duration, hint bool) {
	label := schoolLabel(school)
	e.metrics.drops.WithLabelValues(label).Inc()
	retryMs := retryMillis(retry)
	if hint {
		e.metrics.hints.WithLabelValues(label).Inc()
		e.emit(ev.Socket(), "audio:error", map[string]any{"groupId": groupID, "code": CodeAudioBackpressure,
			"message": backpressureMessage, "retryAfterMs": retryMs, "schemaVersion": SchemaVersion, "traceId": c.traceID})
	}
	if ev.HasAck() {
		_ = ev.Ack(map[string]any{"ok": false, "dropped": true, "groupId": groupID, "code": CodeAudioBackpressure,
			"message": backpressureMessage, "retryAfterMs": retryMs, "schemaVersion": SchemaVersion, "traceId": c.traceID})
	}
}

package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/classwaves/classwaves/pkg/auditlog"
)

// Noisy categories are sampled; every other category, "compliance" first of all, is stored in
// full, and so is any event of priority "critical" or any pre-aggregated row (Count > 1).
var noisyCategories = map[string]bool{
	auditlog.CategorySessionActivity: true, // joins, heartbeats, group moves: many per student per minute
	auditlog.CategoryDataAccessRead:  true, // list and get calls of dashboards
}

// neverSampled categories are stored in full whatever noisyCategories says.
var neverSampled = map[string]bool{auditlog.CategoryCompliance: true}

// RollupSuffix ends the event type of a rollup row ("session.heartbeat_rollup").
const RollupSuffix = "_rollup"

// rollupNamespace derives rollup row ids (UUIDv5).
var rollupNamespace = uuid.MustParse("3c9a3f5e-6d0b-4f7e-8a51-7e2f0c4b9d21")

// recentIDs is how many noisy event ids the sampler remembers deciding on (see sampler.recent).
const recentIDs = 1 << 16

// capWindow is how far behind the newest minute seen the hard-cap counters are kept.
const capWindow = 10 * time.Minute

// sampler decides which noisy events are stored and aggregates the others into minute rollups.
//
// Sampling is by event id: an event is kept when a hash of its id falls below the sample rate, so
// the decision for a redelivered event is the same one. On top, at most hardCap noisy events are
// kept per session and minute (of the event's own time, so a backlog replayed late still counts
// against the minute it happened in). Counters change only when a batch was stored (commit), so a
// batch that failed and comes back is judged afresh. The sampler also remembers the last
// recentIDs noisy ids it committed: a redelivered event already stored is stored again (a no-op,
// idempotent by id) without counting twice, and one already counted in a stored rollup is not
// counted again. Rollup counts are therefore exact while the worker runs; after a worker restart,
// redelivered entries that had been stored but not acknowledged can be counted once more.
type sampler struct {
	rate    float64
	hardCap int

	mu        sync.Mutex
	kept      map[capKey]int
	newestMin int64
	recent    map[string]bool // id -> kept (true) or rolled up (false)
	ring      []string
	ringNext  int
}

type capKey struct {
	session string
	minute  int64 // unix minute
}

func newSampler(rate float64, hardCap int) *sampler {
	return &sampler{
		rate:    rate,
		hardCap: hardCap,
		kept:    map[capKey]int{},
		recent:  map[string]bool{},
		ring:    make([]string, recentIDs),
	}
}

// samplingPlan is the sampler's decision for one batch.
type samplingPlan struct {
	// keep lists the indexes of the batch's records to store.
	keep []int
	// rollups are the rows standing for the sampled-out records, and sources[i] the indexes of
	// the records rollups[i] counts.
	rollups []Record
	sources [][]int
	// sampled is how many events the rollups stand for.
	sampled int

	commitKept map[capKey]int
	commitIDs  map[string]bool
}

// sampleable reports whether r may be sampled at all.
func sampleable(r Record) bool {
	return noisyCategories[r.Category] && !neverSampled[r.Category] &&
		r.Priority != auditlog.PriorityCritical && r.Count <= 1
}

// plan decides for recs. It changes no state: commit(plan) does, once the batch is stored.
func (s *sampler) plan(recs []Record) samplingPlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := samplingPlan{commitKept: map[capKey]int{}, commitIDs: map[string]bool{}}
	type rollupKey struct {
		minute                         int64
		school, session, typ, category string
	}
	groups := map[rollupKey][]int{}
	var order []rollupKey
	for i, r := range recs {
		if !sampleable(r) {
			p.keep = append(p.keep, i)
			continue
		}
		if kept, seen := s.recent[r.ID]; seen {
			if kept {
				p.keep = append(p.keep, i) // stored before: storing again is a no-op
			}
			continue // counted in a stored rollup already
		}
		minute := r.OccurredAt.Unix() / 60
		ck := capKey{r.SessionID, minute}
		if fraction(r.ID) < s.rate && s.kept[ck]+p.commitKept[ck] < s.hardCap {
			p.keep = append(p.keep, i)
			p.commitKept[ck]++
			p.commitIDs[r.ID] = true
			continue
		}
		rk := rollupKey{minute, r.SchoolID, r.SessionID, r.EventType, r.Category}
		if _, ok := groups[rk]; !ok {
			order = append(order, rk)
		}
		groups[rk] = append(groups[rk], i)
		p.commitIDs[r.ID] = false
	}
	for _, rk := range order {
		idx := groups[rk]
		ids := make([]string, len(idx))
		for j, i := range idx {
			ids[j] = recs[i].ID
		}
		p.rollups = append(p.rollups, rollupRecord(rk.minute, rk.school, rk.session, rk.typ, rk.category, ids, s.rate))
		p.sources = append(p.sources, idx)
		p.sampled += len(idx)
	}
	return p
}

// commit records that p's batch was stored.
func (s *sampler) commit(p samplingPlan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range p.commitKept {
		s.kept[k] += n
		s.newestMin = max(s.newestMin, k.minute)
	}
	for id, kept := range p.commitIDs {
		if old := s.ring[s.ringNext]; old != "" {
			delete(s.recent, old)
		}
		s.ring[s.ringNext] = id
		s.ringNext = (s.ringNext + 1) % len(s.ring)
		s.recent[id] = kept
	}
	oldest := s.newestMin - int64(capWindow/time.Minute)
	for k := range s.kept {
		if k.minute < oldest {
			delete(s.kept, k)
		}
	}
}

// fraction maps id to [0, 1) uniformly and deterministically.
func fraction(id string) float64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// rollupRecord builds the row standing for the sampled-out events ids of one minute, school,
// session, type and category. Its id is derived from all of that and the ids, so the same batch
// stored twice (a redelivery after a lost acknowledgement) yields the same row, stored once.
func rollupRecord(minute int64, school, session, typ, category string, ids []string, rate float64) Record {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	h := sha256.New()
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(minute))
	h.Write(buf[:])
	for _, s := range []string{school, session, typ, category} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, id := range sorted {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	id := uuid.NewSHA1(rollupNamespace, h.Sum(nil)).String()
	base := typ
	if max := 100 - len(RollupSuffix); len(base) > max {
		base = base[:max]
		for !utf8.ValidString(base) { // do not split a character
			base = base[:len(base)-1]
		}
	}
	return Record{
		ID:          id,
		OccurredAt:  time.Unix(minute*60, 0).UTC(),
		ActorID:     auditlog.ActorSystem,
		ActorType:   auditlog.ActorSystem,
		EventType:   base + RollupSuffix,
		Category:    category,
		SchoolID:    school,
		SessionID:   session,
		Description: fmt.Sprintf("%d %s events sampled out in this minute", len(ids), typ),
		Priority:    auditlog.PriorityNormal,
		Metadata: map[string]string{
			"rollupOf":   typ,
			"sampleRate": strconv.FormatFloat(rate, 'g', -1, 64),
		},
		Count: len(ids),
	}
}

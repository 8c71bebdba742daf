package stt

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	eventsv1 "github.com/classwaves/classwaves/pkg/api/classwaves/events/v1"
	"github.com/classwaves/classwaves/pkg/auditlog"
)

// budgets meters each school's transcribed minutes per UTC day against
// STT_BUDGET_MINUTES_PER_DAY and sends the STT_BUDGET_ALERT_PCTS alerts.
//
// A window's duration is reserved before it is transcribed (refunded when transcription fails),
// atomically in the store, so replicas share one count and a school over budget is stopped
// before the call, not after. Without a budget (0 = unlimited) use is only reported, so it is
// added up in memory and written every few seconds (and before GetBudgetUsage reads it, and at
// Stop): no database write per window. Windows reserved concurrently may overshoot the budget by at most
// the windows in flight. Each alert is claimed in the store before it goes out, so it is sent
// and audited once per school and day even with several replicas; once a school is exhausted,
// its windows are dropped quietly (counted in stt_windows_total{outcome="dropped_budget"}).
type budgets struct {
	svc   *Service
	limit float64 // seconds; 0 = unlimited
	pcts  []int

	mu sync.Mutex
	// seenDay is the day the maps below are about; they are emptied when it changes.
	seenDay string
	// exhausted remembers schools known to be over budget today, and sent the alerts known to
	// be sent ("school|percent"), to spare the store a write per window.
	exhausted map[string]bool
	sent      map[string]bool
	// unsaved is use not yet written (unlimited budgets), by school and day.
	unsaved map[usageKey]float64
}

type usageKey struct{ school, day string }

func newBudgets(s *Service) *budgets {
	return &budgets{
		svc:       s,
		limit:     s.cfg.BudgetMinutesPerDay * 60,
		pcts:      s.cfg.alertPcts(),
		exhausted: map[string]bool{},
		sent:      map[string]bool{},
		unsaved:   map[usageKey]float64{},
	}
}

// save writes the use added up in memory.
func (b *budgets) save(ctx context.Context) {
	b.mu.Lock()
	unsaved := b.unsaved
	b.unsaved = map[usageKey]float64{}
	b.mu.Unlock()
	for k, secs := range unsaved {
		var err error
		switch {
		case secs > 0:
			var used float64
			used, _, err = b.svc.store.AddUsage(ctx, k.school, k.day, secs, 0)
			if err == nil {
				b.svc.m.budgetUsed.WithLabelValues(k.school).Set(used / 60)
			}
		case secs < 0:
			err = b.svc.store.RefundUsage(ctx, k.school, k.day, -secs)
		}
		if err != nil {
			// Keep it for the next save.
			b.mu.Lock()
			b.unsaved[k] += secs
			b.mu.Unlock()
			b.svc.logger.Warn("stt: saving budget use", "err", err, "schoolId", k.school)
		}
	}
}

// remember reads (and with set, sets) a flag of today's maps.
func (b *budgets) remember(m func(*budgets) map[string]bool, today, key string, set bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seenDay != today {
		b.seenDay = today
		clear(b.exhausted)
		clear(b.sent)
	}
	v := m(b)[key]
	if set {
		m(b)[key] = true
	}
	return v
}

func exhaustedMap(b *budgets) map[string]bool { return b.exhausted }
func sentMap(b *budgets) map[string]bool      { return b.sent }

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// reserve adds d to school's use today. ok is false when the school is over budget.
func (b *budgets) reserve(ctx context.Context, school string, d time.Duration, traceID string) (today string, ok bool, err error) {
	today = day(b.svc.now())
	if b.limit <= 0 {
		b.mu.Lock()
		b.unsaved[usageKey{school, today}] += d.Seconds()
		b.mu.Unlock()
		return today, true, nil
	}
	if b.remember(exhaustedMap, today, school, false) {
		return today, false, nil
	}
	used, added, err := b.svc.store.AddUsage(ctx, school, today, d.Seconds(), b.limit)
	if err != nil {
		return today, false, err
	}
	b.svc.m.budgetUsed.WithLabelValues(school).Set(used / 60)
	if !added {
		b.remember(exhaustedMap, today, school, true)
		// The exhausted alert, once, in case no threshold reached 100 on the way.
		b.alert(ctx, school, today, 100, used, traceID)
		return today, false, nil
	}
	for _, p := range b.pcts {
		if used >= b.limit*float64(p)/100 {
			b.alert(ctx, school, today, p, used, traceID)
		}
	}
	if used >= b.limit {
		b.alert(ctx, school, today, 100, used, traceID) // exhausted: the next window is refused
	}
	return today, true, nil
}

// refund gives back a reservation whose window was not transcribed.
func (b *budgets) refund(ctx context.Context, school, today string, d time.Duration) {
	if b.limit <= 0 {
		b.mu.Lock()
		b.unsaved[usageKey{school, today}] -= d.Seconds()
		b.mu.Unlock()
		return
	}
	if err := b.svc.store.RefundUsage(context.WithoutCancel(ctx), school, today, d.Seconds()); err != nil {
		b.svc.logger.Warn("stt: refunding budget", "err", err, "schoolId", school)
	}
}

// alert sends the percent alert of school's day unless it was sent already: a BudgetAlert event
// (the edge emits it to the school's teachers as teacher:alert) and an audit record.
func (b *budgets) alert(ctx context.Context, school, today string, percent int, used float64, traceID string) {
	key := school + "|" + strconv.Itoa(percent)
	if b.remember(sentMap, today, key, false) {
		return
	}
	claimed, err := b.svc.store.ClaimAlert(ctx, school, today, percent)
	if err != nil {
		b.svc.logger.Warn("stt: claiming a budget alert", "err", err, "schoolId", school, "percent", percent)
		return
	}
	b.remember(sentMap, today, key, true)
	if !claimed {
		return
	}
	exhausted := used >= b.limit
	b.svc.m.budgetAlerts.WithLabelValues(strconv.Itoa(percent)).Inc()
	b.svc.logger.Info("stt budget alert", "schoolId", school, "percent", percent,
		"minutesUsed", used/60, "minutesBudget", b.limit/60, "exhausted", exhausted)
	// The event id derives from the alert, so a redelivered event is recognised downstream.
	id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "stt-budget-alert|%s|%s|%d", school, today, percent)).String()
	b.svc.publish(ctx, &eventsv1.Event{
		Id:       id,
		Type:     EventBudgetAlert,
		Key:      school,
		TraceId:  traceID,
		SchoolId: school,
		Payload: &eventsv1.Event_BudgetAlert{BudgetAlert: &eventsv1.BudgetAlert{
			Percent:       int32(percent),
			MinutesUsed:   used / 60,
			MinutesBudget: b.limit / 60,
			Exhausted:     exhausted,
		}},
	})
	desc := fmt.Sprintf("speech-to-text budget at %d%%: %.1f of %.1f minutes used today", percent, used/60, b.limit/60)
	if exhausted {
		desc = fmt.Sprintf("speech-to-text budget exhausted: %.1f of %.1f minutes used today; transcription stopped until tomorrow (UTC)", used/60, b.limit/60)
	}
	b.svc.audit.Log(ctx, auditlog.Event{
		ID:              id,
		ActorID:         "stt",
		ActorType:       auditlog.ActorSystem,
		EventType:       "stt.budget_alert",
		Category:        auditlog.CategoryConfiguration,
		ResourceType:    "stt_budget",
		ResourceID:      school + "/" + today,
		SchoolID:        school,
		Description:     desc,
		ComplianceBasis: "legitimate_interest",
		Metadata: map[string]string{
			"percent":       strconv.Itoa(percent),
			"minutesUsed":   strconv.FormatFloat(used/60, 'f', 2, 64),
			"minutesBudget": strconv.FormatFloat(b.limit/60, 'f', 2, 64),
			"exhausted":     strconv.FormatBool(exhausted),
			"day":           today,
		},
	})
}

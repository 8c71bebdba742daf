package analytics

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/classwaves/classwaves/pkg/store"
)

// migrationsFS holds the service's migrations: migrations/postgres/NNN_*.sql and
// migrations/sqlite/NNN_*.sql.
//
//go:embed migrations
var migrationsFS embed.FS

// Migrations returns the embedded migrations, rooted so that store.Migrate finds the "postgres"
// and "sqlite" directories (for `classwaves db migrate`).
func Migrations() fs.FS { return store.EmbeddedMigrations(migrationsFS) }

// MigrationService is the name the service's migrations are recorded under.
const MigrationService = "analytics"

// sqlStore is the Store adapter over *store.DB for SQLite and PostgreSQL. The dialects differ in
// time columns (TIMESTAMPTZ against Unix microseconds), booleans and JSON (JSONB against text);
// the query texts are shared. Counters are updated with atomic increments, so replicas applying
// events of the same group concurrently never lose an update; claims are decided inside one
// transaction that holds the row (FOR UPDATE in PostgreSQL, SQLite's write lock).
type sqlStore struct {
	db       *store.DB
	postgres bool
	now      func() time.Time

	sessions, groups, members, speakers, prompts, processed, texts, finals, results, summaries string
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(db *store.DB) *sqlStore {
	t := func(name string) string { return db.Table("analytics", name) }
	return &sqlStore{
		db: db, postgres: db.Provider() == store.Postgres, now: time.Now,
		sessions: t("sessions"), groups: t("group_metrics"), members: t("members"), speakers: t("speaker_words"),
		prompts: t("prompts"), processed: t("processed_events"), texts: t("transcript_texts"),
		finals: t("finalizations"), results: t("session_analytics"), summaries: t("summaries"),
	}
}

// Migrate applies the embedded migrations.
func (s *sqlStore) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, MigrationService, Migrations())
}

func (s *sqlStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *sqlStore) q(query string) string { return s.db.Rebind(query) }

// timeArg is t as the dialect's time columns hold it.
func (s *sqlStore) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if s.postgres {
		return t
	}
	return t.UnixMicro()
}

// nullTimeArg is timeArg, or NULL for nil or the zero time.
func (s *sqlStore) nullTimeArg(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return s.timeArg(*t)
}

// forUpdate locks the selected row until the transaction ends (PostgreSQL); SQLite's
// transactions hold the database's write lock from their start.
func (s *sqlStore) forUpdate() string {
	if s.postgres {
		return " FOR UPDATE"
	}
	return ""
}

// nullTime scans a nullable time column of either dialect.
type nullTime struct{ T *time.Time }

func (n *nullTime) Scan(v any) error {
	if v == nil {
		n.T = nil
		return nil
	}
	var t store.Time
	if err := t.Scan(v); err != nil {
		return err
	}
	n.T = &t.T
	return nil
}

func (n nullTime) value() time.Time {
	if n.T == nil {
		return time.Time{}
	}
	return *n.T
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *sqlStore) exec(ctx context.Context, x execer, query string, args ...any) (int64, error) {
	res, err := x.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ensureSession creates the session's row if it is missing and fills its school when unknown, in
// one statement.
func (s *sqlStore) ensureSession(ctx context.Context, tx *sql.Tx, sessionID, schoolID string, now any) error {
	if _, err := s.exec(ctx, tx, "INSERT INTO "+s.sessions+` AS t (session_id, school_id, first_seen, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET school_id = excluded.school_id WHERE t.school_id = '' AND excluded.school_id <> ''`,
		sessionID, schoolID, now, now); err != nil {
		return fmt.Errorf("session row: %w", err)
	}
	return nil
}

func (s *sqlStore) ensureGroup(ctx context.Context, tx *sql.Tx, sessionID, groupID string, now any) error {
	if _, err := s.exec(ctx, tx, "INSERT INTO "+s.groups+" (session_id, group_id, updated_at) VALUES (?, ?, ?) ON CONFLICT (session_id, group_id) DO NOTHING",
		sessionID, groupID, now); err != nil {
		return fmt.Errorf("group row: %w", err)
	}
	return nil
}

func (s *sqlStore) Apply(ctx context.Context, c Change) (bool, error) {
	if c.EventID == "" || c.SessionID == "" {
		return false, errors.New("analytics store: a change needs an event id and a session id")
	}
	applied := false
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.timeArg(s.now())
		n, err := s.exec(ctx, tx, "INSERT INTO "+s.processed+" (event_id, session_id, event_type, processed_at) VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
			c.EventID, c.SessionID, c.Type, now)
		if err != nil {
			return fmt.Errorf("recording event: %w", err)
		}
		if n == 0 {
			return nil // applied before
		}
		applied = true
		if err := s.ensureSession(ctx, tx, c.SessionID, c.SchoolID, now); err != nil {
			return err
		}
		if c.GroupID != "" && c.Kind != kindSpeech && c.Kind != kindTranscript && c.Kind != kindInsight {
			// The counters' kinds create the group's row themselves (addToGroup).
			if err := s.ensureGroup(ctx, tx, c.SessionID, c.GroupID, now); err != nil {
				return err
			}
		}
		return s.applyChange(ctx, tx, c, now)
	})
	if err != nil {
		return false, fmt.Errorf("analytics store: apply %s %s: %w", c.Type, c.EventID, err)
	}
	return applied, nil
}

func (s *sqlStore) applyChange(ctx context.Context, tx *sql.Tx, c Change, now any) error {
	var err error
	at := c.At
	switch c.Kind {
	case kindSessionStatus:
		var started, ended *time.Time
		switch c.Status {
		case "active":
			started = &at
		case "ended":
			ended = &at
		}
		// An ended session stays ended, whatever arrives late.
		_, err = s.exec(ctx, tx, "UPDATE "+s.sessions+` SET
			status = CASE WHEN status = 'ended' THEN status ELSE ? END,
			teacher_id = CASE WHEN ? = '' THEN teacher_id ELSE ? END,
			started_at = COALESCE(started_at, ?),
			ended_at = COALESCE(ended_at, ?),
			updated_at = ?
			WHERE session_id = ?`,
			c.Status, c.TeacherID, c.TeacherID, s.nullTimeArg(started), s.nullTimeArg(ended), now, c.SessionID)
	case kindGroupStatus:
		if c.Ready && c.GroupID != "" {
			_, err = s.exec(ctx, tx, "UPDATE "+s.groups+" SET ready_at = COALESCE(ready_at, ?), updated_at = ? WHERE session_id = ? AND group_id = ?",
				s.timeArg(at), now, c.SessionID, c.GroupID)
		}
	case kindMemberJoined:
		if c.GroupID != "" && c.StudentID != "" {
			_, err = s.exec(ctx, tx, "INSERT INTO "+s.members+" (session_id, student_id, group_id, joined_at) VALUES (?, ?, ?, ?) ON CONFLICT (session_id, student_id) DO NOTHING",
				c.SessionID, c.StudentID, c.GroupID, s.timeArg(at))
		}
	case kindTranscript:
		if c.GroupID == "" {
			return nil
		}
		turns := int64(0)
		if c.Words > 0 {
			turns = 1
		}
		if err = s.addToGroup(ctx, tx, c, now, groupCounters{words: c.Words, turns: turns, transcribed: c.Seconds}); err != nil {
			return err
		}
		if c.Speaker != "" && c.Words > 0 {
			if _, err = s.exec(ctx, tx, "INSERT INTO "+s.speakers+" (session_id, group_id, speaker_id, word_count) VALUES (?, ?, ?, 0) ON CONFLICT (session_id, group_id, speaker_id) DO NOTHING",
				c.SessionID, c.GroupID, c.Speaker); err != nil {
				return err
			}
			if _, err = s.exec(ctx, tx, "UPDATE "+s.speakers+" SET word_count = word_count + ? WHERE session_id = ? AND group_id = ? AND speaker_id = ?",
				c.Words, c.SessionID, c.GroupID, c.Speaker); err != nil {
				return err
			}
		}
		if c.Text != "" && c.TranscriptID != "" {
			_, err = s.exec(ctx, tx, "INSERT INTO "+s.texts+" (transcript_id, session_id, group_id, window_start, text) VALUES (?, ?, ?, ?, ?) ON CONFLICT (transcript_id) DO NOTHING",
				c.TranscriptID, c.SessionID, c.GroupID, s.timeArg(c.WindowStart), c.Text)
		}
	case kindSpeech:
		if c.GroupID != "" {
			err = s.addToGroup(ctx, tx, c, now, groupCounters{speaking: c.Speech, silence: c.Silence, longest: c.LongestSilence})
		}
	case kindInsight:
		if c.Tier == 1 && c.GroupID != "" {
			onTopic := int64(0)
			if c.OnTopic {
				onTopic = 1
			}
			err = s.addToGroup(ctx, tx, c, now, groupCounters{tier1: 1, onTopic: onTopic, questions: c.Questions, insights: 1})
		} else {
			_, err = s.exec(ctx, tx, "UPDATE "+s.sessions+" SET session_insight_count = session_insight_count + 1, updated_at = ? WHERE session_id = ?",
				now, c.SessionID)
		}
	case kindPromptRaised:
		if c.PromptID != "" {
			_, err = s.exec(ctx, tx, "INSERT INTO "+s.prompts+" (session_id, prompt_id, group_id, state, updated_at) VALUES (?, ?, ?, '', ?) ON CONFLICT (session_id, prompt_id) DO NOTHING",
				c.SessionID, c.PromptID, c.GroupID, now)
		}
	case kindPromptActed:
		if c.PromptID != "" {
			_, err = s.exec(ctx, tx, "INSERT INTO "+s.prompts+` (session_id, prompt_id, group_id, state, updated_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (session_id, prompt_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
				c.SessionID, c.PromptID, c.GroupID, c.PromptState, now)
		}
	default:
		return fmt.Errorf("unknown change kind %d", c.Kind)
	}
	return err
}

// groupCounters are increments of a group's measures (longest: a maximum).
type groupCounters struct {
	speaking, silence, longest, transcribed           float64
	words, turns, questions, tier1, onTopic, insights int64
}

// addToGroup adds to a group's counters, creating its row if needed, in one statement; concurrent
// writers of the same group serialize on the row and lose nothing.
func (s *sqlStore) addToGroup(ctx context.Context, tx *sql.Tx, c Change, now any, d groupCounters) error {
	_, err := s.exec(ctx, tx, "INSERT INTO "+s.groups+` AS g (session_id, group_id, speaking_seconds, silence_seconds,
		longest_silence_seconds, transcribed_seconds, word_count, turn_count, question_count, tier1_count, on_topic_count,
		insight_count, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (session_id, group_id) DO UPDATE SET
			speaking_seconds = g.speaking_seconds + excluded.speaking_seconds,
			silence_seconds = g.silence_seconds + excluded.silence_seconds,
			longest_silence_seconds = CASE WHEN g.longest_silence_seconds < excluded.longest_silence_seconds
				THEN excluded.longest_silence_seconds ELSE g.longest_silence_seconds END,
			transcribed_seconds = g.transcribed_seconds + excluded.transcribed_seconds,
			word_count = g.word_count + excluded.word_count,
			turn_count = g.turn_count + excluded.turn_count,
			question_count = g.question_count + excluded.question_count,
			tier1_count = g.tier1_count + excluded.tier1_count,
			on_topic_count = g.on_topic_count + excluded.on_topic_count,
			insight_count = g.insight_count + excluded.insight_count,
			updated_at = excluded.updated_at`,
		c.SessionID, c.GroupID, d.speaking, d.silence, d.longest, d.transcribed, d.words, d.turns, d.questions, d.tier1, d.onTopic, d.insights, now)
	if err != nil {
		return fmt.Errorf("group counters: %w", err)
	}
	return nil
}

func (s *sqlStore) Session(ctx context.Context, sessionID string) (SessionState, bool, error) {
	st := SessionState{SessionID: sessionID}
	var (
		objectives     []byte
		started, ended nullTime
		firstSeen      store.Time
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT school_id, teacher_id, title, objectives, status, started_at, ended_at,
		group_count, student_count, session_insight_count, first_seen FROM `+s.sessions+` WHERE session_id = ?`), sessionID).
		Scan(&st.SchoolID, &st.TeacherID, &st.Title, &objectives, &st.Status, &started, &ended,
			&st.GroupCount, &st.StudentCount, &st.SessionInsights, &firstSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return SessionState{}, false, nil
	}
	if err != nil {
		return SessionState{}, false, fmt.Errorf("analytics store: session: %w", err)
	}
	st.StartedAt, st.EndedAt, st.FirstSeen = started.T, ended.T, firstSeen.T
	if len(objectives) > 0 {
		if err := json.Unmarshal(objectives, &st.Objectives); err != nil {
			return SessionState{}, false, fmt.Errorf("analytics store: session objectives: %w", err)
		}
		if len(st.Objectives) == 0 {
			st.Objectives = nil
		}
	}
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'acknowledged' THEN 1 ELSE 0 END), 0)
		FROM `+s.prompts+` WHERE session_id = ?`), sessionID).Scan(&st.Prompts, &st.PromptsAcknowledged); err != nil {
		return SessionState{}, false, fmt.Errorf("analytics store: prompts: %w", err)
	}
	return st, true, nil
}

func (s *sqlStore) Groups(ctx context.Context, sessionID string) ([]GroupState, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT group_id, group_name, speaking_seconds, silence_seconds, longest_silence_seconds,
		transcribed_seconds, word_count, turn_count, question_count, tier1_count, on_topic_count, insight_count, ready_at
		FROM `+s.groups+` WHERE session_id = ? ORDER BY group_id`), sessionID)
	if err != nil {
		return nil, fmt.Errorf("analytics store: groups: %w", err)
	}
	var out []GroupState
	index := map[string]int{}
	for rows.Next() {
		var (
			g     GroupState
			ready nullTime
		)
		if err := rows.Scan(&g.GroupID, &g.Name, &g.SpeakingSeconds, &g.SilenceSeconds, &g.LongestSilenceSeconds,
			&g.TranscribedSeconds, &g.Words, &g.Turns, &g.Questions, &g.Tier1, &g.OnTopic, &g.Insights, &ready); err != nil {
			rows.Close()
			return nil, fmt.Errorf("analytics store: groups: %w", err)
		}
		g.ReadyAt = ready.T
		index[g.GroupID] = len(out)
		out = append(out, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("analytics store: groups: %w", err)
	}

	rows, err = s.db.QueryContext(ctx, s.q("SELECT group_id, COUNT(*), MIN(joined_at) FROM "+s.members+" WHERE session_id = ? GROUP BY group_id"), sessionID)
	if err != nil {
		return nil, fmt.Errorf("analytics store: group members: %w", err)
	}
	for rows.Next() {
		var (
			id    string
			n     int
			first nullTime
		)
		if err := rows.Scan(&id, &n, &first); err != nil {
			rows.Close()
			return nil, fmt.Errorf("analytics store: group members: %w", err)
		}
		if i, ok := index[id]; ok {
			out[i].Members, out[i].FirstJoinAt = n, first.T
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("analytics store: group members: %w", err)
	}

	rows, err = s.db.QueryContext(ctx, s.q("SELECT group_id, speaker_id, word_count FROM "+s.speakers+" WHERE session_id = ?"), sessionID)
	if err != nil {
		return nil, fmt.Errorf("analytics store: speaker words: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			gid, speaker string
			words        int64
		)
		if err := rows.Scan(&gid, &speaker, &words); err != nil {
			return nil, fmt.Errorf("analytics store: speaker words: %w", err)
		}
		if i, ok := index[gid]; ok {
			if out[i].SpeakerWords == nil {
				out[i].SpeakerWords = map[string]int64{}
			}
			out[i].SpeakerWords[speaker] = words
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("analytics store: speaker words: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Members(ctx context.Context, sessionID string) ([]Member, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT group_id, student_id, joined_at FROM "+s.members+" WHERE session_id = ? ORDER BY joined_at, student_id"), sessionID)
	if err != nil {
		return nil, fmt.Errorf("analytics store: members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var (
			m  Member
			at store.Time
		)
		if err := rows.Scan(&m.GroupID, &m.StudentID, &at); err != nil {
			return nil, fmt.Errorf("analytics store: members: %w", err)
		}
		m.JoinedAt = at.T
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *sqlStore) RecordContext(ctx context.Context, r ContextRecord, at time.Time) error {
	objectives := r.Objectives
	if objectives == nil {
		objectives = []string{}
	}
	js, err := json.Marshal(objectives)
	if err != nil {
		return fmt.Errorf("analytics store: objectives: %w", err)
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.timeArg(at)
		if err := s.ensureSession(ctx, tx, r.SessionID, r.SchoolID, now); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, "UPDATE "+s.sessions+` SET title = ?, objectives = ?, group_count = ?, student_count = ?,
			teacher_id = CASE WHEN ? = '' THEN teacher_id ELSE ? END, updated_at = ? WHERE session_id = ?`,
			r.Title, string(js), r.GroupCount, r.StudentCount, r.TeacherID, r.TeacherID, now, r.SessionID); err != nil {
			return err
		}
		for _, g := range r.Groups {
			if err := s.ensureGroup(ctx, tx, r.SessionID, g.GroupID, now); err != nil {
				return err
			}
			if _, err := s.exec(ctx, tx, "UPDATE "+s.groups+" SET group_name = ? WHERE session_id = ? AND group_id = ?", g.Name, r.SessionID, g.GroupID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("analytics store: record context: %w", err)
	}
	return nil
}

const finalizationColumns = `session_id, status, owner, lease_until, attempts, failure_reason, event_id, published,
	summary_status, summary_owner, summary_lease_until, summary_reason, summary_event_id, summary_published, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanFinalization(r rowScanner) (Finalization, error) {
	var (
		f                       Finalization
		lease, updated          store.Time
		summaryLease            nullTime
		published, sumPublished bool
	)
	err := r.Scan(&f.SessionID, &f.Status, &f.Owner, &lease, &f.Attempts, &f.FailureReason, &f.EventID, &published,
		&f.SummaryStatus, &f.SummaryOwner, &summaryLease, &f.SummaryReason, &f.SummaryEventID, &sumPublished, &updated)
	if err != nil {
		return Finalization{}, err
	}
	f.LeaseUntil, f.SummaryLeaseUntil, f.UpdatedAt = lease.T, summaryLease.value(), updated.T
	f.Published, f.SummaryPublished = published, sumPublished
	return f, nil
}

func (s *sqlStore) Claim(ctx context.Context, r ClaimRequest) (ClaimOutcome, Finalization, error) {
	var (
		outcome ClaimOutcome
		f       Finalization
	)
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.timeArg(r.Now)
		lease := s.timeArg(r.Now.Add(r.Lease))
		n, err := s.exec(ctx, tx, "INSERT INTO "+s.finals+` (session_id, status, owner, lease_until, attempts, created_at, updated_at)
			VALUES (?, 'finalizing', ?, ?, 1, ?, ?) ON CONFLICT (session_id) DO NOTHING`, r.SessionID, r.Owner, lease, now, now)
		if err != nil {
			return err
		}
		if n == 0 {
			f, err = scanFinalization(tx.QueryRowContext(ctx, s.q("SELECT "+finalizationColumns+" FROM "+s.finals+" WHERE session_id = ?"+s.forUpdate()), r.SessionID))
			if err != nil {
				return err
			}
			switch {
			case f.Status == statusFinalized:
				outcome = AlreadyFinalized
				return nil
			case f.Status == statusFinalizing && f.LeaseUntil.After(r.Now):
				outcome = InProgress
				return nil
			case f.Status == statusFailed && !r.RetryFailed:
				outcome = AlreadyFailed
				return nil
			}
			// A stale claim (its owner stopped), or a failure being retried: take it over. The
			// failure's event, if still unpublished, is superseded by this attempt's.
			if _, err := s.exec(ctx, tx, "UPDATE "+s.finals+` SET status = 'finalizing', owner = ?, lease_until = ?, attempts = attempts + 1,
				failure_reason = '', event_id = '', updated_at = ? WHERE session_id = ?`, r.Owner, lease, now, r.SessionID); err != nil {
				return err
			}
		}
		outcome = Claimed
		f, err = scanFinalization(tx.QueryRowContext(ctx, s.q("SELECT "+finalizationColumns+" FROM "+s.finals+" WHERE session_id = ?"), r.SessionID))
		return err
	})
	if err != nil {
		return 0, Finalization{}, fmt.Errorf("analytics store: claim: %w", err)
	}
	return outcome, f, nil
}

func (s *sqlStore) Complete(ctx context.Context, owner string, r FinalResult) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.timeArg(r.FinalizedAt)
		summaryStatus, summaryOwner := "", ""
		var summaryLease any
		if r.Summaries != nil {
			summaryStatus, summaryOwner, summaryLease = summaryPending, owner, s.timeArg(r.SummaryLeaseUntil)
		}
		n, err := s.exec(ctx, tx, "UPDATE "+s.finals+` SET status = 'finalized', event_id = ?, published = FALSE, failure_reason = '',
			summary_status = ?, summary_owner = ?, summary_lease_until = ?, updated_at = ?
			WHERE session_id = ? AND owner = ? AND status = 'finalizing'`,
			r.EventID, summaryStatus, summaryOwner, summaryLease, now, r.SessionID, owner)
		if err != nil {
			return err
		}
		if n == 0 {
			return errLostClaim
		}
		if _, err := s.exec(ctx, tx, "INSERT INTO "+s.results+` (session_id, school_id, teacher_id, participation_rate, engagement_score,
			duration_seconds, group_count, student_count, joined_student_count, insight_count, prompt_count, prompts_acknowledged,
			speaking_seconds, word_count, ended_at, finalized_at, analytics)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING`,
			r.SessionID, r.SchoolID, r.TeacherID, r.ParticipationRate, r.EngagementScore, r.DurationSeconds, r.GroupCount,
			r.StudentCount, r.JoinedStudentCount, r.InsightCount, r.PromptCount, r.PromptsAcknowledged, r.SpeakingSeconds,
			r.WordCount, s.nullTimeArg(r.EndedAt), now, string(r.JSON)); err != nil {
			return err
		}
		if r.Summaries != nil {
			return s.pendingSummaries(ctx, tx, r.SessionID, r.Summaries, now)
		}
		return nil
	})
	if errors.Is(err, errLostClaim) {
		return errLostClaim
	}
	if err != nil {
		return fmt.Errorf("analytics store: complete: %w", err)
	}
	return nil
}

// pendingSummaries (re)creates pending rows for the session summary and each group's.
func (s *sqlStore) pendingSummaries(ctx context.Context, tx *sql.Tx, sessionID string, groups []GroupName, now any) error {
	rows := append([]GroupName{{GroupID: ""}}, groups...)
	for _, g := range rows {
		if _, err := s.exec(ctx, tx, "INSERT INTO "+s.summaries+` (session_id, group_id, group_name, status, summarizer, updated_at)
			VALUES (?, ?, ?, 'pending', '', ?) ON CONFLICT (session_id, group_id) DO UPDATE SET status = 'pending',
			group_name = excluded.group_name, updated_at = excluded.updated_at`, sessionID, g.GroupID, g.Name, now); err != nil {
			return fmt.Errorf("pending summaries: %w", err)
		}
	}
	return nil
}

func (s *sqlStore) Fail(ctx context.Context, sessionID, owner, reason, eventID string, at time.Time) error {
	n, err := s.exec(ctx, s.db, "UPDATE "+s.finals+` SET status = 'failed', failure_reason = ?, event_id = ?, published = FALSE, updated_at = ?
		WHERE session_id = ? AND owner = ? AND status = 'finalizing'`, reason, eventID, s.timeArg(at), sessionID, owner)
	if err != nil {
		return fmt.Errorf("analytics store: fail: %w", err)
	}
	if n == 0 {
		return errLostClaim
	}
	return nil
}

func (s *sqlStore) Finalization(ctx context.Context, sessionID string) (Finalization, bool, error) {
	f, err := scanFinalization(s.db.QueryRowContext(ctx, s.q("SELECT "+finalizationColumns+" FROM "+s.finals+" WHERE session_id = ?"), sessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return Finalization{}, false, nil
	}
	if err != nil {
		return Finalization{}, false, fmt.Errorf("analytics store: finalization: %w", err)
	}
	return f, true, nil
}

func (s *sqlStore) FinalAnalytics(ctx context.Context, sessionID string) ([]byte, bool, error) {
	var js []byte
	err := s.db.QueryRowContext(ctx, s.q("SELECT analytics FROM "+s.results+" WHERE session_id = ?"), sessionID).Scan(&js)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("analytics store: final analytics: %w", err)
	}
	return js, true, nil
}

func (s *sqlStore) MarkPublished(ctx context.Context, sessionID, eventID string) error {
	if eventID == "" {
		return nil
	}
	_, err := s.exec(ctx, s.db, "UPDATE "+s.finals+` SET
		published = CASE WHEN event_id = ? THEN TRUE ELSE published END,
		summary_published = CASE WHEN summary_event_id = ? THEN TRUE ELSE summary_published END
		WHERE session_id = ?`, eventID, eventID, sessionID)
	if err != nil {
		return fmt.Errorf("analytics store: mark published: %w", err)
	}
	return nil
}

func (s *sqlStore) ClaimRepublish(ctx context.Context, sessionID, eventID string, before, at time.Time) (bool, error) {
	n, err := s.exec(ctx, s.db, "UPDATE "+s.finals+` SET updated_at = ? WHERE session_id = ? AND updated_at < ?
		AND ((event_id = ? AND published = FALSE) OR (summary_event_id = ? AND summary_published = FALSE))`,
		s.timeArg(at), sessionID, s.timeArg(before), eventID, eventID)
	if err != nil {
		return false, fmt.Errorf("analytics store: claim republish: %w", err)
	}
	return n == 1, nil
}

func (s *sqlStore) ClaimSummaries(ctx context.Context, sessionID, owner string, at, leaseUntil time.Time) (bool, error) {
	n, err := s.exec(ctx, s.db, "UPDATE "+s.finals+` SET summary_owner = ?, summary_lease_until = ?, updated_at = ?
		WHERE session_id = ? AND summary_status = 'pending' AND (summary_owner = '' OR summary_lease_until IS NULL OR summary_lease_until < ?)`,
		owner, s.timeArg(leaseUntil), s.timeArg(at), sessionID, s.timeArg(at))
	if err != nil {
		return false, fmt.Errorf("analytics store: claim summaries: %w", err)
	}
	return n == 1, nil
}

func (s *sqlStore) RestartSummaries(ctx context.Context, sessionID, owner string, groups []GroupName, at, leaseUntil time.Time) (bool, error) {
	restarted := false
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.timeArg(at)
		n, err := s.exec(ctx, tx, "UPDATE "+s.finals+` SET summary_status = 'pending', summary_owner = ?, summary_lease_until = ?,
			summary_reason = '', summary_event_id = '', updated_at = ?
			WHERE session_id = ? AND status = 'finalized' AND summary_status IN ('', 'failed')`,
			owner, s.timeArg(leaseUntil), now, sessionID)
		if err != nil || n == 0 {
			return err
		}
		restarted = true
		return s.pendingSummaries(ctx, tx, sessionID, groups, now)
	})
	if err != nil {
		return false, fmt.Errorf("analytics store: restart summaries: %w", err)
	}
	return restarted, nil
}

func (s *sqlStore) SaveSummaries(ctx context.Context, sessionID, owner string, rows []SummaryRow, eventID string, at time.Time) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.timeArg(at)
		n, err := s.exec(ctx, tx, "UPDATE "+s.finals+` SET summary_status = 'ready', summary_reason = '', summary_event_id = ?,
			summary_published = FALSE, updated_at = ? WHERE session_id = ? AND summary_owner = ? AND summary_status = 'pending'`,
			eventID, now, sessionID, owner)
		if err != nil {
			return err
		}
		if n == 0 {
			return errLostClaim
		}
		for _, r := range rows {
			if _, err := s.exec(ctx, tx, "INSERT INTO "+s.summaries+` (session_id, group_id, group_name, status, summary, summarizer, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, group_id) DO UPDATE SET group_name = excluded.group_name,
				status = excluded.status, summary = excluded.summary, summarizer = excluded.summarizer, updated_at = excluded.updated_at`,
				sessionID, r.GroupID, r.GroupName, r.Status, string(r.JSON), r.Summarizer, now); err != nil {
				return err
			}
		}
		// The transcript text was kept for the summaries only.
		_, err = s.exec(ctx, tx, "DELETE FROM "+s.texts+" WHERE session_id = ?", sessionID)
		return err
	})
	if errors.Is(err, errLostClaim) {
		return errLostClaim
	}
	if err != nil {
		return fmt.Errorf("analytics store: save summaries: %w", err)
	}
	return nil
}

func (s *sqlStore) FailSummaries(ctx context.Context, sessionID, owner, reason string, at time.Time) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.timeArg(at)
		n, err := s.exec(ctx, tx, "UPDATE "+s.finals+` SET summary_status = 'failed', summary_reason = ?, updated_at = ?
			WHERE session_id = ? AND summary_owner = ? AND summary_status = 'pending'`, reason, now, sessionID, owner)
		if err != nil {
			return err
		}
		if n == 0 {
			return errLostClaim
		}
		_, err = s.exec(ctx, tx, "UPDATE "+s.summaries+" SET status = 'failed', updated_at = ? WHERE session_id = ? AND status = 'pending'", now, sessionID)
		return err
	})
	if errors.Is(err, errLostClaim) {
		return errLostClaim
	}
	if err != nil {
		return fmt.Errorf("analytics store: fail summaries: %w", err)
	}
	return nil
}

func (s *sqlStore) Summaries(ctx context.Context, sessionID string) (SummarySet, error) {
	var set SummarySet
	err := s.db.QueryRowContext(ctx, s.q("SELECT summary_status FROM "+s.finals+" WHERE session_id = ?"), sessionID).Scan(&set.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return SummarySet{}, nil
	}
	if err != nil {
		return SummarySet{}, fmt.Errorf("analytics store: summaries: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT group_id, group_name, status, summary, summarizer, updated_at FROM "+s.summaries+
		" WHERE session_id = ? ORDER BY group_id"), sessionID)
	if err != nil {
		return SummarySet{}, fmt.Errorf("analytics store: summaries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r       SummaryRow
			js      sql.NullString
			updated store.Time
		)
		if err := rows.Scan(&r.GroupID, &r.GroupName, &r.Status, &js, &r.Summarizer, &updated); err != nil {
			return SummarySet{}, fmt.Errorf("analytics store: summaries: %w", err)
		}
		if js.Valid && js.String != "" {
			r.JSON = []byte(js.String)
		}
		r.UpdatedAt = updated.T
		set.Rows = append(set.Rows, r)
	}
	return set, rows.Err()
}

func (s *sqlStore) TranscriptTexts(ctx context.Context, sessionID string) ([]TranscriptText, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT group_id, window_start, text FROM "+s.texts+
		" WHERE session_id = ? ORDER BY group_id, window_start, transcript_id"), sessionID)
	if err != nil {
		return nil, fmt.Errorf("analytics store: transcript texts: %w", err)
	}
	defer rows.Close()
	var out []TranscriptText
	for rows.Next() {
		var (
			t  TranscriptText
			at store.Time
		)
		if err := rows.Scan(&t.GroupID, &at, &t.Text); err != nil {
			return nil, fmt.Errorf("analytics store: transcript texts: %w", err)
		}
		t.WindowStart = at.T
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *sqlStore) Sweep(ctx context.Context, now, staleBefore time.Time, limit int) (Work, error) {
	var w Work
	ids := func(query string, args ...any) ([]string, error) {
		rows, err := s.db.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			out = append(out, id)
		}
		return out, rows.Err()
	}
	stuck, err := ids("SELECT session_id FROM "+s.finals+" WHERE status = 'finalizing' AND lease_until < ? ORDER BY lease_until LIMIT ?", s.timeArg(now), limit)
	if err != nil {
		return Work{}, fmt.Errorf("analytics store: sweep: %w", err)
	}
	missed, err := ids("SELECT s.session_id FROM "+s.sessions+" s WHERE s.status = 'ended' AND s.updated_at < ? AND NOT EXISTS (SELECT 1 FROM "+
		s.finals+" f WHERE f.session_id = s.session_id) ORDER BY s.updated_at LIMIT ?", s.timeArg(staleBefore), limit)
	if err != nil {
		return Work{}, fmt.Errorf("analytics store: sweep: %w", err)
	}
	w.Finalize = append(stuck, missed...)
	w.Summaries, err = ids("SELECT session_id FROM "+s.finals+` WHERE summary_status = 'pending'
		AND (summary_owner = '' OR summary_lease_until IS NULL OR summary_lease_until < ?) ORDER BY updated_at LIMIT ?`, s.timeArg(now), limit)
	if err != nil {
		return Work{}, fmt.Errorf("analytics store: sweep: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+finalizationColumns+" FROM "+s.finals+` WHERE updated_at < ?
		AND ((event_id <> '' AND published = FALSE AND status IN ('finalized', 'failed')) OR (summary_event_id <> '' AND summary_published = FALSE))
		ORDER BY updated_at LIMIT ?`), s.timeArg(staleBefore), limit)
	if err != nil {
		return Work{}, fmt.Errorf("analytics store: sweep: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		f, err := scanFinalization(rows)
		if err != nil {
			return Work{}, fmt.Errorf("analytics store: sweep: %w", err)
		}
		w.Unpublished = append(w.Unpublished, f)
	}
	if err := rows.Err(); err != nil {
		return Work{}, fmt.Errorf("analytics store: sweep: %w", err)
	}
	return w, nil
}

func (s *sqlStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.exec(ctx, s.db, "DELETE FROM "+s.processed+" WHERE processed_at < ?", s.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("analytics store: purge processed events: %w", err)
	}
	m, err := s.exec(ctx, s.db, "DELETE FROM "+s.texts+" WHERE window_start < ?", s.timeArg(before))
	if err != nil {
		return n, fmt.Errorf("analytics store: purge transcript texts: %w", err)
	}
	return n + m, nil
}

func (s *sqlStore) SchoolStats(ctx context.Context, since time.Time, schoolID string) ([]SchoolStats, error) {
	filter, args := " AND s.first_seen >= ?", []any{s.timeArg(since)}
	if schoolID != "" {
		filter += " AND s.school_id = ?"
		args = append(args, schoolID)
	}
	byID := map[string]*SchoolStats{}
	var order []string
	get := func(id string) *SchoolStats {
		if st, ok := byID[id]; ok {
			return st
		}
		st := &SchoolStats{SchoolID: id}
		byID[id] = st
		order = append(order, id)
		return st
	}
	each := func(query string, scan func(rows *sql.Rows) error) error {
		rows, err := s.db.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	err := each(`SELECT s.school_id, COUNT(*), COUNT(DISTINCT CASE WHEN s.teacher_id <> '' THEN s.teacher_id END),
		CAST(COALESCE(SUM(CASE WHEN s.status IN ('active', 'paused') THEN 1 ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(s.session_insight_count), 0) AS BIGINT)
		FROM `+s.sessions+` s WHERE s.school_id <> ''`+filter+` GROUP BY s.school_id ORDER BY s.school_id`,
		func(rows *sql.Rows) error {
			var (
				id                                  string
				sessions, teachers, active, insight int64
			)
			if err := rows.Scan(&id, &sessions, &teachers, &active, &insight); err != nil {
				return err
			}
			st := get(id)
			st.Sessions, st.Teachers, st.ActiveSessions, st.Insights = int(sessions), int(teachers), int(active), int(insight)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("analytics store: school sessions: %w", err)
	}
	err = each(`SELECT s.school_id, COUNT(DISTINCT m.student_id) FROM `+s.members+` m JOIN `+s.sessions+
		` s ON s.session_id = m.session_id WHERE s.school_id <> ''`+filter+` GROUP BY s.school_id`,
		func(rows *sql.Rows) error {
			var (
				id string
				n  int64
			)
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			get(id).Students = int(n)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("analytics store: school students: %w", err)
	}
	err = each(`SELECT s.school_id, COALESCE(SUM(g.transcribed_seconds), 0), CAST(COALESCE(SUM(g.insight_count), 0) AS BIGINT)
		FROM `+s.groups+` g JOIN `+s.sessions+` s ON s.session_id = g.session_id WHERE s.school_id <> ''`+filter+` GROUP BY s.school_id`,
		func(rows *sql.Rows) error {
			var (
				id       string
				seconds  float64
				insights int64
			)
			if err := rows.Scan(&id, &seconds, &insights); err != nil {
				return err
			}
			st := get(id)
			st.TranscribedSeconds = seconds
			st.Insights += int(insights)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("analytics store: school groups: %w", err)
	}
	err = each(`SELECT s.school_id, AVG(a.engagement_score), AVG(a.participation_rate), COUNT(*)
		FROM `+s.results+` a JOIN `+s.sessions+` s ON s.session_id = a.session_id WHERE s.school_id <> ''`+filter+` GROUP BY s.school_id`,
		func(rows *sql.Rows) error {
			var (
				id                   string
				engagement, partRate float64
				n                    int64
			)
			if err := rows.Scan(&id, &engagement, &partRate, &n); err != nil {
				return err
			}
			st := get(id)
			st.AverageEngagement, st.AverageParticipation, st.FinalizedSessionsCounted = engagement, partRate, int(n)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("analytics store: school results: %w", err)
	}
	slices.Sort(order)
	out := make([]SchoolStats, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}

func (s *sqlStore) Figures(ctx context.Context) (Figures, error) {
	var f Figures
	if err := s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM "+s.sessions+" WHERE status IN ('active', 'paused')")).Scan(&f.ActiveSessions); err != nil {
		return Figures{}, fmt.Errorf("analytics store: figures: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT status, COUNT(*) FROM "+s.finals+" GROUP BY status"))
	if err != nil {
		return Figures{}, fmt.Errorf("analytics store: figures: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status string
			n      int
		)
		if err := rows.Scan(&status, &n); err != nil {
			return Figures{}, fmt.Errorf("analytics store: figures: %w", err)
		}
		switch status {
		case statusFinalized:
			f.Finalized = n
		case statusFailed:
			f.Failed = n
		case statusFinalizing:
			f.Pending = n
		}
	}
	return f, rows.Err()
}

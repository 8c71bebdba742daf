package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/auditlog"
	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/bus/inproc"
	"github.com/classwaves/classwaves/pkg/bus/redisbus"
	"github.com/classwaves/classwaves/pkg/config"
	"github.com/classwaves/classwaves/pkg/store"
)

// RedisConfig names the Redis the bus (and later rate limits) use. Without REDIS_URL the process
// uses the in-process bus, which is only meaningful when every module runs in this process.
type RedisConfig struct {
	URL       string
	Password  string
	PoolSize  int
	Timeout   time.Duration
	KeyPrefix string
}

// RegisterFlags registers the seed's Redis settings.
func (c *RedisConfig) RegisterFlags(f *config.FlagSet) {
	f.String(&c.URL, "redis.url", "REDIS_URL", "", "Redis for the event bus; empty: in-process bus (monolithic mode only)")
	f.String(&c.Password, "redis.password", "REDIS_PASSWORD", "", "Redis password, when not in REDIS_URL")
	f.Int(&c.PoolSize, "redis.pool-size", "REDIS_POOL_SIZE", 20, "Redis connections per process (each bus subscriber holds one while it waits)")
	f.DurationMS(&c.Timeout, "redis.timeout", "REDIS_TIMEOUT", 3*time.Second, "Redis dial, read and write timeout")
	f.String(&c.KeyPrefix, "redis.key-prefix", "BUS_KEY_PREFIX", "", "prefix of every bus key (the audit stream is AUDIT_LOG_STREAM_KEY after it)")
}

// Validate says what is wrong.
func (c *RedisConfig) Validate() error {
	var errs []error
	if c.URL != "" {
		if _, err := redis.ParseURL(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("REDIS_URL must be a redis:// or rediss:// URL"))
		}
	}
	errs = append(errs, config.Positive("REDIS_POOL_SIZE", c.PoolSize), config.Positive("REDIS_TIMEOUT", c.Timeout))
	return config.Join(errs...)
}

// eventTopicWindow is how many events an event topic keeps (fan-out readers do not acknowledge).
const eventTopicWindow = 100000

// busModules are the modules that publish or consume events: split across processes they need a
// shared (Redis) bus.
var busModules = []string{Audit, STT, Session, Guidance, Analytics, Realtime}

// validateInfra checks what depends on the set of modules: a module that uses the bus, run
// without every other module, needs REDIS_URL.
func (c *Config) validateInfra(modules []string) error {
	if c.Redis.URL != "" || contains(modules, All) {
		return nil
	}
	var split []string
	for _, m := range busModules {
		if contains(modules, m) {
			split = append(split, m)
		}
	}
	if len(split) == 0 {
		return nil
	}
	return fmt.Errorf("REDIS_URL is required when %s runs without the other modules: the event bus must be shared between processes", strings.Join(split, ", "))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// database opens the process's store once; every module of the process shares it (each service
// migrates and uses only its own tables).
func (a *App) database(ctx context.Context) (*store.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	db, err := store.Open(ctx, a.cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", a.cfg.Store.EffectiveProvider(), err)
	}
	a.db = db
	a.closers = append(a.closers, db.Close)
	return db, nil
}

// serviceInfra is what a service module needs from the process: the database, the bus and the
// audit client (each opened once per process).
func (a *App) serviceInfra(ctx context.Context) (*store.DB, bus.Bus, *auditlog.Client, error) {
	db, err := a.database(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := a.eventBus(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	audit, err := a.auditClient(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return db, b, audit, nil
}

// eventBus opens the process's bus once: Redis Streams when REDIS_URL is set, else in-process.
func (a *App) eventBus(ctx context.Context) (bus.Bus, error) {
	if a.bus != nil {
		return a.bus, nil
	}
	auditTopic := a.cfg.Audit.Log.StreamKey
	backlog := a.cfg.Audit.Log.MaxBacklog
	var b bus.Bus
	if a.cfg.Redis.URL == "" {
		ib, err := inproc.New(inproc.Options{
			Topics: map[string]inproc.TopicOptions{
				auditTopic: {MaxLen: backlog, Overflow: inproc.RejectNew},
				// Event topics are read by fan-out subscribers (the edge), which never acknowledge,
				// and by consumer groups (guidance, analytics): keep a bounded window (it also
				// serves replay after a reconnect).
				a.cfg.STT.EventsTopic:       {MaxLen: eventTopicWindow, Overflow: inproc.TrimOldest},
				a.cfg.Session.EventsTopic:   {MaxLen: eventTopicWindow, Overflow: inproc.TrimOldest},
				a.cfg.Guidance.EventsTopic:  {MaxLen: eventTopicWindow, Overflow: inproc.TrimOldest},
				a.cfg.Analytics.EventsTopic: {MaxLen: eventTopicWindow, Overflow: inproc.TrimOldest},
			},
			Logger: a.logger,
		})
		if err != nil {
			return nil, err
		}
		b = ib
	} else {
		client, err := a.redisClient(ctx)
		if err != nil {
			return nil, err
		}
		rb, err := redisbus.New(redisbus.Options{
			Prefix: a.cfg.Redis.KeyPrefix,
			// The audit client enforces AUDIT_LOG_MAX_BACKLOG itself (the worker deletes what it
			// stored); XADD MAXLEN would silently trim unstored events, so the cap here is only a
			// memory guard at twice the backlog.
			Topics: map[string]redisbus.TopicOptions{
				auditTopic:                  {MaxLen: 2 * int64(backlog)},
				a.cfg.STT.EventsTopic:       {MaxLen: eventTopicWindow},
				a.cfg.Session.EventsTopic:   {MaxLen: eventTopicWindow},
				a.cfg.Guidance.EventsTopic:  {MaxLen: eventTopicWindow},
				a.cfg.Analytics.EventsTopic: {MaxLen: eventTopicWindow},
			},
			Logger: a.logger,
		}, client)
		if err != nil {
			return nil, err
		}
		b = rb
	}
	a.bus = b
	a.closers = append(a.closers, b.Close)
	return b, nil
}

// redisClient connects to REDIS_URL once per process (bus and rate limits share it).
func (a *App) redisClient(ctx context.Context) (*redis.Client, error) {
	if a.redis != nil {
		return a.redis, nil
	}
	opts, err := redis.ParseURL(a.cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if a.cfg.Redis.Password != "" {
		opts.Password = a.cfg.Redis.Password
	}
	opts.PoolSize = a.cfg.Redis.PoolSize
	opts.ContextTimeoutEnabled = true // Publish honours the audit client's 50 ms deadline
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = a.cfg.Redis.Timeout, a.cfg.Redis.Timeout, a.cfg.Redis.Timeout
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to Redis: %w", err)
	}
	a.redis = client
	a.closers = append(a.closers, client.Close)
	return client, nil
}

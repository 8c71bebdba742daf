package redisbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/classwaves/classwaves/pkg/bus"
	"github.com/classwaves/classwaves/pkg/retry"
)

// fanOutCount is the most entries a fan-out read takes per stream.
const fanOutCount = 256

// FanOut calls h for every message published to topic after the call, in publish order, on its
// own cursor (XREAD), so every subscriber sees every message. Entries that cannot be decoded are
// skipped (and logged). A subscriber slower than the topic's trimming misses the trimmed entries.
func (b *Bus) FanOut(ctx context.Context, topic string, h bus.Handler) (bus.Subscription, error) {
	if b.isClosed() {
		return nil, bus.ErrClosed
	}
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("redisbus: nil handler")
	}
	t := b.topic(topic)
	// The cursors start at each stream's last entry now, so that everything published after this
	// call returns is seen.
	cursors := make([]string, t.parts)
	cmds := make([]*redis.XMessageSliceCmd, t.parts)
	if _, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range t.streams {
			cmds[i] = p.XRevRangeN(ctx, s, "+", "-", 1)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("redisbus: fan-out %s: %w", topic, err)
	}
	for i, c := range cmds {
		cursors[i] = "0-0"
		if xs := c.Val(); len(xs) > 0 {
			cursors[i] = xs[0].ID
		}
	}
	f := &fanOut{b: b, t: t, h: h, cursors: cursors}
	return b.start(ctx, f.run)
}

// fanOut is one fan-out subscriber.
type fanOut struct {
	b       *Bus
	t       topicInfo
	h       bus.Handler
	cursors []string
}

func (f *fanOut) run(ctx context.Context) {
	var bo backoff
	for ctx.Err() == nil {
		n, err := f.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.b.log.Warn("redisbus: fan-out read failed; backing off", "topic", f.t.name, "err", err)
			_ = retry.Sleep(ctx, bo.next())
			continue
		}
		bo.reset()
		if n == 0 && f.t.parts > 1 {
			// Nothing new: block until any partition has something, then read them all again
			// at once (a blocked XREAD can wake on one stream while another got an earlier id).
			args := append(append([]string(nil), f.t.streams...), f.cursors...)
			err := f.b.rdb.XRead(ctx, &redis.XReadArgs{Streams: args, Count: 1, Block: f.b.opts.ReadBlock}).Err()
			if err != nil && !errors.Is(err, redis.Nil) && ctx.Err() == nil {
				f.b.log.Warn("redisbus: fan-out wait failed; backing off", "topic", f.t.name, "err", err)
				_ = retry.Sleep(ctx, bo.next())
			}
		}
	}
}

// read delivers the next entries after the cursors and returns how many it read.
func (f *fanOut) read(ctx context.Context) (int, error) {
	block := f.b.opts.ReadBlock
	if f.t.parts > 1 {
		block = -1 // one consistent snapshot of every partition; run waits when it is empty
	}
	args := append(append([]string(nil), f.t.streams...), f.cursors...)
	res, err := f.b.rdb.XRead(ctx, &redis.XReadArgs{Streams: args, Count: fanOutCount, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	index := make(map[string]int, len(f.t.streams))
	for i, s := range f.t.streams {
		index[s] = i
	}
	reads := make([][]redis.XMessage, len(f.t.streams))
	partOf := make(map[string]int)
	for _, s := range res {
		if i, ok := index[s.Stream]; ok {
			reads[i] = s.Messages
			for _, x := range s.Messages {
				partOf[x.ID] = i
			}
		}
	}
	entries := mergeCut(reads, fanOutCount)
	for _, x := range entries {
		f.cursors[partOf[x.ID]] = x.ID
		if ctx.Err() != nil {
			return len(entries), nil
		}
		msg, err := decode(f.t.name, x, 1)
		if err != nil {
			f.b.log.Warn("redisbus: fan-out skipped a malformed entry", "topic", f.t.name, "id", x.ID, "err", err)
			continue
		}
		f.call(ctx, msg)
	}
	return len(entries), nil
}

// call runs the handler, logging a panic instead of dying of it.
func (f *fanOut) call(ctx context.Context, msg bus.Message) {
	defer func() {
		if r := recover(); r != nil {
			f.b.log.Error("redisbus: fan-out handler panicked", "topic", f.t.name, "id", msg.ID, "panic", fmt.Sprint(r))
		}
	}()
	f.h(ctx, msg)
}

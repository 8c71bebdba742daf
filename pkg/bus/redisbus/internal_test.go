package redisbus

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

func TestAssign(t *testing.T) {
	tests := []struct {
		name    string
		members []string
		member  string
		parts   int
		want    map[int]bool
	}{
		{"alone takes all", []string{"a"}, "a", 3, map[int]bool{0: true, 1: true, 2: true}},
		{"round robin by name", []string{"c", "a", "b"}, "b", 5, map[int]bool{1: true, 4: true}},
		{"more members than partitions", []string{"a", "b", "c"}, "c", 2, map[int]bool{}},
		{"not a member", []string{"a"}, "z", 2, map[int]bool{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, assign(tt.members, tt.member, tt.parts)); diff != "" {
				t.Errorf("assign (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeCut(t *testing.T) {
	x := func(ids ...string) []redis.XMessage {
		var out []redis.XMessage
		for _, id := range ids {
			out = append(out, redis.XMessage{ID: id})
		}
		return out
	}
	ids := func(xs []redis.XMessage) []string {
		var out []string
		for _, m := range xs {
			out = append(out, m.ID)
		}
		return out
	}
	tests := []struct {
		name  string
		reads [][]redis.XMessage
		limit int
		want  []string
	}{
		{"merged by id, numerically", [][]redis.XMessage{x("9-0", "10-0"), x("9-1", "100-0")}, 5, []string{"9-0", "9-1", "10-0", "100-0"}},
		// The first stream may hold more after 10-0 (it returned limit entries): nothing after
		// 10-0 is complete yet.
		{"cut at a full stream", [][]redis.XMessage{x("1-0", "10-0"), x("2-0", "11-0", "12-0")}, 2, []string{"1-0", "2-0", "10-0"}},
		{"empty", [][]redis.XMessage{nil, nil}, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ids(mergeCut(tt.reads, tt.limit))); diff != "" {
				t.Errorf("mergeCut (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	m, err := decode("t", redis.XMessage{ID: "1-0", Values: map[string]any{"key": "k", "payload": "p", "h:a": "b", "other": "ignored"}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if m.Key != "k" || string(m.Payload) != "p" || m.Deliveries != 3 || m.Topic != "t" || !cmp.Equal(m.Headers, map[string]string{"a": "b"}) {
		t.Errorf("decode = %+v", m)
	}
	m, err = decode("t", redis.XMessage{ID: "2-0", Values: map[string]any{"key": "k"}}, 1)
	if err == nil {
		t.Fatal("decode without payload succeeded")
	}
	if m.Key != "k" || string(m.Payload) != `{"key":"k"}` {
		t.Errorf("malformed decode = key %q payload %s", m.Key, m.Payload)
	}
}

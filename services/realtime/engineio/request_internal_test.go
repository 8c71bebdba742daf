package engineio

import (
	"context"
	"crypto/tls"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
)

func TestRequestOf(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://example.test/engine.io/?EIO=4&transport=websocket&room=a&room=b&bad=%zz", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Add("X-Many", "one")
	r.Header.Add("X-Many", "two")
	r.Header.Set("Authorization", "Bearer tok")
	r.Header.Set("X-Empty", "")
	r.TLS = &tls.ConnectionState{}
	all := r.Header.Clone()
	for _, name := range []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"} {
		r.Header.Set(name, "negotiation")
	}
	r.Header.Set("Sec-WebSocket-Protocol", "chat") // kept: the application may care
	all.Set("Sec-WebSocket-Protocol", "chat")

	req := requestOf(r)
	if req.Host() != "example.test" || req.RemoteAddr() != "10.1.2.3:5555" || !req.Secure() ||
		req.RawQuery() != r.URL.RawQuery {
		t.Errorf("request = %+v", req)
	}
	if h := req.Header(); !maps.EqualFunc(h, all, slices.Equal) {
		t.Errorf("Header() = %v, want %v (without the negotiation headers)", h, all)
	}
	for name, want := range map[string]string{
		"x-many": "one", "AUTHORIZATION": "Bearer tok", "X-Empty": "", "X-Missing": "",
	} {
		if got := req.HeaderValue(name); got != want {
			t.Errorf("HeaderValue(%q) = %q, want %q", name, got, want)
		}
	}
	// The query is parsed as url.URL.Query parses it: the malformed pair is skipped.
	if q := req.Query(); !slices.Equal(q["room"], []string{"a", "b"}) || q.Get("EIO") != "4" || q.Has("bad") {
		t.Errorf("Query() = %v", q)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = req.HeaderValue("Authorization") }); allocs != 0 {
		t.Errorf("HeaderValue allocates %v times", allocs)
	}
	// What a session keeps is one allocation, which shares nothing with r.
	if allocs := testing.AllocsPerRun(100, func() { req = requestOf(r) }); allocs != 1 {
		t.Errorf("requestOf allocates %v times, want 1", allocs)
	}
	r.Header.Set("Authorization", "changed")
	r.Host = "changed.test"
	if req.HeaderValue("Authorization") != "Bearer tok" || req.Host() != "example.test" {
		t.Errorf("the request changed with r: %+v", req)
	}

	plain := requestOf(httptest.NewRequest(http.MethodGet, "/", nil))
	if plain.Secure() || plain.RawQuery() != "" || plain.Host() != "example.com" || len(plain.Header()) != 0 || len(plain.Query()) != 0 {
		t.Errorf("request without TLS, query or headers = %+v", plain)
	}
}

func TestDone(t *testing.T) {
	var early Done // its channel made before Close
	ch := early.Chan()
	ctx := early.Context()
	if early.Closed() || ctx.Err() != nil {
		t.Fatal("a new Done is closed")
	}
	select {
	case <-ch:
		t.Fatal("the channel of an open Done is closed")
	default:
	}
	if !early.Close() || early.Close() {
		t.Error("Close reports true once, then false")
	}
	<-ch
	<-ctx.Done()
	if !early.Closed() || ctx.Err() != context.Canceled {
		t.Errorf("closed Done: Closed() = %v, Err() = %v", early.Closed(), ctx.Err())
	}

	var late Done // closed before anything asked for its channel
	late.Close()
	<-late.Chan()
	<-late.Context().Done()
	if late.ch != nil {
		t.Error("Close made a channel")
	}
}

func TestQueryValue(t *testing.T) {
	for _, raw := range []string{
		"", "EIO=4&transport=websocket", "transport=polling&transport=websocket", "sid", "sid=", "=x&sid=a",
		"sid=a;b&sid=c", "sid=%zz&sid=ok", "s%69d=x", "sid=a+b%20c", "%zz=1&sid=2", "&&sid=3&", "sid=%", "transport=web=socket",
	} {
		q, _ := url.ParseQuery(raw)
		for _, key := range []string{"sid", "transport", "EIO", ""} {
			if got, want := queryValue(raw, key), q.Get(key); got != want {
				t.Errorf("queryValue(%q, %q) = %q, want %q", raw, key, got, want)
			}
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = queryValue("EIO=4&transport=websocket&sid=abc", "sid") }); allocs != 0 {
		t.Errorf("queryValue allocates %v times", allocs)
	}
}

func FuzzQueryValue(f *testing.F) {
	f.Add("EIO=4&transport=websocket&sid=a%20b", "sid")
	f.Add("a=1;b=2&a=3", "a")
	f.Fuzz(func(t *testing.T, raw, key string) {
		q, _ := url.ParseQuery(raw)
		if got, want := queryValue(raw, key), q.Get(key); got != want {
			t.Errorf("queryValue(%q, %q) = %q, want %q", raw, key, got, want)
		}
	})
}

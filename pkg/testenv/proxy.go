package testenv

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on loopback in front of a server, for fault tests: Cut drops every
// connection through it and refuses new ones, as a network partition or a dead server would;
// Restore lets connections through again. It keeps its address across Cut and Restore.
type Proxy struct {
	// Addr is the proxy's 127.0.0.1:<port>; dial it instead of the target.
	Addr string

	target string

	mu       sync.Mutex
	listener net.Listener // nil while cut
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup // accept loops and copy goroutines
}

// NewProxy starts a proxy to target (host:port). It is closed when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy listen: %v", err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(l)
	t.Cleanup(p.close)
	return p
}

// URL returns rawURL with its host:port replaced by the proxy's, e.g. a DATABASE_URL or REDIS_URL
// that goes through the proxy.
func (p *Proxy) URL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	u.Host = p.Addr
	return u.String()
}

// Cut closes every connection through the proxy and stops listening, so new connections are
// refused until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	l := p.listener
	p.listener = nil
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	if l != nil {
		_ = l.Close()
	}
}

// Restore listens again on the same address, so connections go through again. It reports an error
// only when the address cannot be bound again.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.listener != nil {
		return nil
	}
	var l net.Listener
	var err error
	// The port was ours a moment ago; its closing may take a moment to settle.
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", p.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	p.serveLocked(l)
	return nil
}

func (p *Proxy) serve(l net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serveLocked(l)
}

// serveLocked starts the accept loop on l; p.mu is held.
func (p *Proxy) serveLocked(l net.Listener) {
	p.listener = l
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(c)
			}()
		}
	}()
}

// handle pipes c to a new connection to the target until either side closes or Cut.
func (p *Proxy) handle(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.listener == nil || p.closed { // cut while dialing
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.conns[up] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	// One side finished: close both so the other copy ends too.
	_ = c.Close()
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// close cuts everything and waits for the proxy's goroutines to end.
func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Cut()
	p.wg.Wait()
}

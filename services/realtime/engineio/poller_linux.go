package engineio

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// poller watches idle WebSocket connections for readability with one epoll instance, so that an idle
// connection holds no goroutine (and no goroutine stack) while it waits for its next message. A
// connection parks when its read buffer is empty: park arms a one-shot watch on its socket, and when the
// socket becomes readable (data, peer shutdown or error) the poller starts a goroutine that resumes
// reading. Go's own network poller still drives every read and write, and it watches the epoll instance
// itself (an epoll descriptor is readable while it has events): the poller's goroutine never blocks a
// thread in epoll_wait, which with one processor (GOMAXPROCS=1) would stall the others until the runtime
// took the processor back.
type poller struct {
	ep *os.File        // the epoll instance, non-blocking, registered with Go's network poller
	rc syscall.RawConn // ep's

	mu     sync.Mutex
	nextID uint64
	parked map[uint64]resumer // armed watches: what resumes their connections
	closed bool
	done   chan struct{}
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil, err
	}
	ep := os.NewFile(uintptr(epfd), "engineio-epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, err
	}
	p := &poller{ep: ep, rc: rc, parked: map[uint64]resumer{}, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// ctl runs epoll_ctl on the instance; the descriptor stays open during the call.
func (p *poller) ctl(op int, rc syscall.RawConn, ev *syscall.EpollEvent) error {
	var ctlErr error
	err := p.rc.Control(func(epfd uintptr) {
		err := rc.Control(func(fd uintptr) { ctlErr = syscall.EpollCtl(int(epfd), op, int(fd), ev) })
		if ctlErr == nil {
			ctlErr = err
		}
	})
	if err != nil {
		return err
	}
	return ctlErr
}

// The key of an event is stored in the 64 bits of epoll_data, which syscall.EpollEvent splits into Fd
// and Pad.
func setKey(ev *syscall.EpollEvent, k uint64) {
	ev.Fd = int32(uint32(k))
	ev.Pad = int32(uint32(k >> 32))
}

func key(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// errPollerClosed reports a park on a closed poller.
var errPollerClosed = errors.New("engineio: poller closed")

// watch is one connection's registration with the poller.
type watch struct {
	id    uint64 // 0 until the first park
	added bool
}

// park arms a one-shot readability watch on rc's socket; when it fires, r.resume runs on a new goroutine.
// The caller must not read the connection after a successful park: r owns it. w keeps the
// connection's registration between parks.
func (p *poller) park(w *watch, rc syscall.RawConn, r resumer) error {
	// Everything is decided under mu before the watch is armed: from then on, the goroutine that resume
	// runs on may park w again (run takes mu before starting it, which orders the two).
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errPollerClosed
	}
	if w.id == 0 {
		p.nextID++
		w.id = p.nextID
	}
	op := syscall.EPOLL_CTL_MOD
	if !w.added {
		op = syscall.EPOLL_CTL_ADD
	}
	wasAdded := w.added
	w.added = true
	p.parked[w.id] = r
	id := w.id
	p.mu.Unlock()

	ev := syscall.EpollEvent{Events: pollEvents}
	setKey(&ev, id)
	if err := p.ctl(op, rc, &ev); err != nil {
		// Not armed: no resume can run, and w is still the caller's.
		p.mu.Lock()
		delete(p.parked, id)
		w.added = wasAdded
		p.mu.Unlock()
		return err
	}
	return nil
}

// forget removes a connection's registration before its socket is closed. A watch that already fired
// is not undone: its resume reads from the closed connection and ends there.
func (p *poller) forget(w *watch, rc syscall.RawConn) {
	p.mu.Lock()
	added := w.added
	if w.id != 0 {
		delete(p.parked, w.id)
	}
	p.mu.Unlock()
	if added {
		_ = p.ctl(syscall.EPOLL_CTL_DEL, rc, &syscall.EpollEvent{})
	}
}

// close stops the wait loop and releases the epoll instance. Parked connections are not resumed.
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	clear(p.parked)
	p.mu.Unlock()
	_ = p.ep.Close() // ends run's wait
	<-p.done
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		var n int
		var waitErr error
		err := p.rc.Read(func(epfd uintptr) bool {
			n, waitErr = syscall.EpollWait(int(epfd), events, 0)
			if errors.Is(waitErr, syscall.EINTR) {
				n, waitErr = 0, nil
			}
			return n > 0 || waitErr != nil // false: wait until the instance has events
		})
		if err != nil || waitErr != nil {
			return // closed
		}
		for i := range n {
			k := key(&events[i])
			p.mu.Lock()
			r := p.parked[k]
			delete(p.parked, k) // one shot: the next park arms it again
			p.mu.Unlock()
			if r != nil {
				go r.resume()
			}
		}
	}
}

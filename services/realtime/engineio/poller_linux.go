package engineio

import (
	"errors"
	"sync"
	"syscall"
)

// poller watches idle WebSocket connections for readability with one epoll instance, so that an idle
// connection holds no goroutine (and no goroutine stack) while it waits for its next message. A
// connection parks when its read buffer is empty: park arms a one-shot watch on its socket, and when the
// socket becomes readable (data, peer shutdown or error) the poller starts a goroutine that resumes
// reading. Go's own network poller still drives every read and write; this epoll instance only tells
// which idle connections have something to read.
type poller struct {
	epfd  int
	wakeR int // read end of a pipe that wakes the wait loop to exit
	wakeW int

	mu     sync.Mutex
	nextID uint64
	parked map[uint64]func() // watched connections: their resume functions
	closed bool
	done   chan struct{}
}

// wakeID is the epoll key of the wake pipe; connection keys start at 1.
const wakeID = 0

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	setKey(&ev, wakeID)
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		_ = syscall.Close(epfd)
		_ = syscall.Close(pipe[0])
		_ = syscall.Close(pipe[1])
		return nil, err
	}
	p := &poller{epfd: epfd, wakeR: pipe[0], wakeW: pipe[1], parked: map[uint64]func(){}, done: make(chan struct{})}
	go p.run()
	return p, nil
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

// park arms a one-shot readability watch on rc's socket; when it fires, resume runs on a new goroutine.
// The caller must not read the connection after a successful park: resume owns it. w keeps the
// connection's registration between parks.
func (p *poller) park(w *watch, rc syscall.RawConn, resume func()) error {
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
	p.parked[w.id] = resume
	id := w.id
	p.mu.Unlock()

	ev := syscall.EpollEvent{Events: pollEvents}
	setKey(&ev, id)
	var ctlErr error
	err := rc.Control(func(fd uintptr) { ctlErr = syscall.EpollCtl(p.epfd, op, int(fd), &ev) })
	if err == nil {
		err = ctlErr
	}
	if err != nil {
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
		_ = rc.Control(func(fd uintptr) { _ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil) })
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
	_, _ = syscall.Write(p.wakeW, []byte{1})
	<-p.done
	_ = syscall.Close(p.epfd)
	_ = syscall.Close(p.wakeR)
	_ = syscall.Close(p.wakeW)
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			k := key(&events[i])
			if k == wakeID {
				return
			}
			p.mu.Lock()
			resume := p.parked[k]
			delete(p.parked, k) // one shot: the next park registers it again
			p.mu.Unlock()
			if resume != nil {
				go resume()
			}
		}
	}
}

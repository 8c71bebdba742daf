//go:build !linux

package engineio

import (
	"errors"
	"syscall"
)

// poller is Linux only (epoll). Elsewhere newPoller fails and every WebSocket connection keeps a reading
// goroutine for its whole life.
type poller struct{}

type watch struct{}

func newPoller() (*poller, error) {
	return nil, errors.New("engineio: idle-connection poller needs Linux")
}

func (p *poller) park(*watch, syscall.RawConn, resumer) error {
	return errors.New("engineio: no poller")
}

func (p *poller) forget(*watch, syscall.RawConn) {}

func (p *poller) close() {}

package edge

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	emitted     *prometheus.CounterVec
	audioBytes  *prometheus.CounterVec
	drops       *prometheus.CounterVec
	hints       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_connections_total", Help: "Socket.IO namespace connections accepted.",
		}, []string{"namespace"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_disconnects_total", Help: "Socket.IO namespace disconnections.",
		}, []string{"namespace"}),
		emitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_messages_emitted_total", Help: "Events emitted to sockets or rooms by the edge.",
		}, []string{"event"}),
		audioBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_audio_bytes_total", Help: "Audio bytes accepted from sockets and sent to stt.",
		}, []string{"school"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_backpressure_drops_total", Help: "Audio chunks dropped by the per-socket, per-session or per-school rate limits.",
		}, []string{"school"}),
		hints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_backpressure_hints_total", Help: "AUDIO_BACKPRESSURE hints sent to sockets.",
		}, []string{"school"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.disconnects, m.emitted, m.audioBytes, m.drops, m.hints} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: registering metrics: %w", err)
		}
	}
	return m, nil
}

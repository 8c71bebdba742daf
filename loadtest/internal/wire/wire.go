// Package wire is what the load tool (wsbench) and the benchmarked servers say to each other over
// HTTP besides Socket.IO. The Node server (node/server.mjs) answers the same JSON.
package wire

// Stats is the /stats body of either server.
type Stats struct {
	Server     string `json:"server"`
	Version    string `json:"version"`
	PID        int    `json:"pid"`
	Sockets    int64  `json:"sockets"`
	Joins      int64  `json:"joins"`
	BadJoins   int64  `json:"badJoins"`
	Chunks     int64  `json:"chunks"`
	ChunkBytes int64  `json:"chunkBytes"`
	BadChunks  int64  `json:"badChunks"`
	Broadcasts int64  `json:"broadcasts"`
	// Memory is the server's own breakdown (the Go server: rss, heapInuse, heapAlloc, stackInuse,
	// sys, goroutines, numGC; the Node server: process.memoryUsage() and more), in bytes or counts.
	Memory map[string]float64 `json:"memory"`
}

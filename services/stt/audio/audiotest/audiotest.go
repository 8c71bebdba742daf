// Package audiotest makes audio for tests and benchmarks of the STT path.
package audiotest

import (
	"encoding/binary"
	"math"
	"time"
)

// Speech is d of 16-bit mono PCM at rate: a 220 Hz tone at -20 dBFS in 900 ms bursts with 100 ms
// pauses, which the voice activity detector takes for speech (so no window is skipped as silent).
func Speech(rate int, d time.Duration) []byte {
	n := int(d.Seconds() * float64(rate))
	out := make([]byte, 2*n)
	amp := math.Pow(10, -20.0/20) * 32767 * math.Sqrt2
	for i := range n {
		v := 0.0
		if (i*1000/rate)%1000 < 900 {
			v = amp * math.Sin(2*math.Pi*220*float64(i)/float64(rate))
		}
		binary.LittleEndian.PutUint16(out[2*i:], uint16(int16(v)))
	}
	return out
}

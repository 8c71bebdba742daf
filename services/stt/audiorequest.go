package stt

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/grpcserver"
)

// maxReusedChunk is the largest chunk whose bytes an audioRequest keeps storage for between
// messages: a browser's chunk is a few KB; a rare big one (up to WS_MAX_AUDIO_CHUNK_BYTES) gets
// storage of its own rather than pinning megabytes for the rest of the stream.
const maxReusedChunk = 256 << 10

// audioRequest is the value StreamAudio receives every message into (grpcserver.ReusingDecoder).
// An audio chunk, a stream's every message but the first and last, decodes into storage it
// reuses: its bytes, the chunk, its timestamp and the oneof wrapper. Without it, each chunk's
// bytes were allocated again by proto.Unmarshal and became garbage as soon as the window had
// copied them, about as many bytes of garbage a second as the audio streamed in.
//
// What a chunk holds is valid until the next receive; Stream.Chunk copies what it keeps.
type audioRequest struct {
	*sttv1.StreamAudioRequest // the received message, for the handler and the interceptors

	msg      sttv1.StreamAudioRequest
	oneof    sttv1.StreamAudioRequest_Chunk
	chunk    sttv1.AudioChunk
	captured timestamppb.Timestamp
	data     []byte
}

var _ grpcserver.ReusingDecoder = (*audioRequest)(nil)

func newAudioRequest() *audioRequest {
	return &audioRequest{StreamAudioRequest: new(sttv1.StreamAudioRequest)}
}

// DecodeReusing decodes b: a chunk in its plain wire form (what protobuf encoders write: each
// field once, no unknown fields) into the reused storage, anything else (start, stop, or a chunk
// written differently) with proto.Unmarshal into a new message, so the content is always exactly
// proto.Unmarshal's.
func (r *audioRequest) DecodeReusing(b []byte) error {
	if r.decodeChunk(b) {
		return nil
	}
	m := new(sttv1.StreamAudioRequest)
	if err := proto.Unmarshal(b, m); err != nil {
		r.StreamAudioRequest = new(sttv1.StreamAudioRequest)
		return err
	}
	r.StreamAudioRequest = m
	return nil
}

// release zeroes the chunk storage, so no audio stays behind after the stream.
func (r *audioRequest) release() {
	clear(r.data)
	r.data = nil
	r.chunk.Reset()
}

// decodeChunk decodes b into the reused storage when it is a StreamAudioRequest holding one
// AudioChunk in plain form, and reports whether it did. On false nothing visible changed.
func (r *audioRequest) decodeChunk(b []byte) bool {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 2 || typ != protowire.BytesType {
		return false
	}
	body, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return false
	}
	var (
		data                 []byte
		seq                  uint64
		ts                   []byte
		hasData, hasSeq, ts1 bool
	)
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return false
		}
		body = body[n:]
		switch {
		case num == 1 && typ == protowire.BytesType && !hasData:
			data, n = protowire.ConsumeBytes(body)
			hasData = true
		case num == 2 && typ == protowire.VarintType && !hasSeq:
			seq, n = protowire.ConsumeVarint(body)
			hasSeq = true
		case num == 3 && typ == protowire.BytesType && !ts1:
			ts, n = protowire.ConsumeBytes(body)
			ts1 = true
		default:
			return false
		}
		if n < 0 {
			return false
		}
		body = body[n:]
	}
	var secs, nanos uint64
	var hasSecs, hasNanos bool
	for len(ts) > 0 {
		num, typ, n := protowire.ConsumeTag(ts)
		if n < 0 || typ != protowire.VarintType {
			return false
		}
		ts = ts[n:]
		var v uint64
		v, n = protowire.ConsumeVarint(ts)
		if n < 0 {
			return false
		}
		switch {
		case num == 1 && !hasSecs:
			secs, hasSecs = v, true
		case num == 2 && !hasNanos:
			nanos, hasNanos = v, true
		default:
			return false
		}
		ts = ts[n:]
	}

	r.chunk.Reset()
	if len(data) > 0 {
		if len(data) <= maxReusedChunk {
			r.data = append(r.data[:0], data...)
			r.chunk.Data = r.data
		} else {
			r.chunk.Data = append([]byte(nil), data...)
		}
	}
	r.chunk.Seq = int64(seq)
	if ts1 {
		r.captured.Reset()
		r.captured.Seconds, r.captured.Nanos = int64(secs), int32(nanos)
		r.chunk.CapturedAt = &r.captured
	}
	r.oneof.Chunk = &r.chunk
	r.msg.Reset()
	r.msg.Message = &r.oneof
	r.StreamAudioRequest = &r.msg
	return true
}

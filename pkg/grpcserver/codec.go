package grpcserver

import (
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// ReusingDecoder is a request message that decodes itself from the received bytes. A stream
// handler that receives many large messages into one value (stt's audio chunks, 10 a second per
// group) implements it to reuse its own storage instead of allocating every message's bytes again,
// as proto.Unmarshal does.
//
// DecodeReusing must give the message the same content proto.Unmarshal would, or fail as it
// would. b is valid only during the call; the message may keep storage of its own that the next
// decode overwrites, so what the handler keeps of a received message it must copy. The message
// is still a proto.Message, so the interceptors (authorization, validation) see it like any other.
type ReusingDecoder interface {
	proto.Message
	DecodeReusing(b []byte) error
}

// codec is the proto codec every server uses, with the ReusingDecoder hook.
type codec struct {
	encoding.CodecV2
}

func newCodec() codec {
	return codec{CodecV2: encoding.GetCodecV2(protocodec.Name)}
}

// Unmarshal lets a ReusingDecoder decode itself and leaves every other message to the proto codec.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	d, ok := v.(ReusingDecoder)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return d.DecodeReusing(buf.ReadOnlyData())
}

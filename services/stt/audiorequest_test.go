package stt

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
)

func chunkRequest(c *sttv1.AudioChunk) []byte {
	b, err := proto.Marshal(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Chunk{Chunk: c}})
	if err != nil {
		panic(err)
	}
	return b
}

// audioRequestInputs are wire messages of every shape: plain chunks (the reused path), and what
// must take proto.Unmarshal's path (start, stop, chunks written unusually, damaged bytes).
func audioRequestInputs() [][]byte {
	start, _ := proto.Marshal(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Start{Start: &sttv1.AudioStart{
		SessionId: "0b6a8c3e-8d1f-4a43-9a51-7a3f0f3d7b11", GroupId: "6f0d8a1e-2c3b-4d5e-8f90-a1b2c3d4e5f6", SchoolId: "s", SampleRate: 16000}}})
	stop, _ := proto.Marshal(&sttv1.StreamAudioRequest{Message: &sttv1.StreamAudioRequest_Stop{Stop: &sttv1.AudioStop{}}})
	plain := chunkRequest(&sttv1.AudioChunk{Data: []byte{1, 2, 3}, Seq: 7})
	var inner []byte // a chunk with its fields in reverse order and data twice
	inner = protowire.AppendTag(inner, 2, protowire.VarintType)
	inner = protowire.AppendVarint(inner, 9)
	inner = protowire.AppendTag(inner, 1, protowire.BytesType)
	inner = protowire.AppendBytes(inner, []byte("first"))
	reversed := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), inner)
	inner = protowire.AppendTag(inner, 1, protowire.BytesType)
	inner = protowire.AppendBytes(inner, []byte("second"))
	twice := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), inner)
	unknown := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType),
		protowire.AppendVarint(protowire.AppendTag([]byte{0x0a, 1, 5}, 15, protowire.VarintType), 1))
	return [][]byte{
		plain,
		chunkRequest(&sttv1.AudioChunk{Data: bytes.Repeat([]byte{0xAB}, 3200), Seq: 1 << 40}),
		chunkRequest(&sttv1.AudioChunk{Data: bytes.Repeat([]byte{7}, maxReusedChunk+1), Seq: 2}),
		chunkRequest(&sttv1.AudioChunk{Data: []byte{9}, Seq: -3, CapturedAt: &timestamppb.Timestamp{Seconds: 1_764_000_000, Nanos: 123}}),
		chunkRequest(&sttv1.AudioChunk{Data: []byte{9}, CapturedAt: &timestamppb.Timestamp{Seconds: -5, Nanos: -1}}),
		chunkRequest(&sttv1.AudioChunk{Data: []byte{9}, CapturedAt: &timestamppb.Timestamp{}}),
		chunkRequest(&sttv1.AudioChunk{Seq: 4}),
		chunkRequest(&sttv1.AudioChunk{}),
		start, stop, reversed, twice, unknown,
		append(append([]byte(nil), plain...), plain...), // the chunk field twice: merged
		append(append([]byte(nil), plain...), stop...),  // a later oneof member wins
		plain[:len(plain)-1],                            // cut short
		{0x12, 0x80},                                    // a length that does not end
		{},
	}
}

// TestAudioRequestDecodesAsProto checks that every input decodes to what proto.Unmarshal makes of
// it (or fails as it does), also when decoded one after another into the same value, and that a
// plain chunk takes the reused storage.
func TestAudioRequestDecodesAsProto(t *testing.T) {
	r := newAudioRequest()
	inputs := audioRequestInputs()
	for round := range 2 {
		for i, b := range inputs {
			want := new(sttv1.StreamAudioRequest)
			wantErr := proto.Unmarshal(b, want)
			gotErr := r.DecodeReusing(b)
			if (gotErr != nil) != (wantErr != nil) {
				t.Fatalf("round %d input %d: DecodeReusing error = %v, proto.Unmarshal error = %v", round, i, gotErr, wantErr)
			}
			if wantErr == nil && !proto.Equal(r.StreamAudioRequest, want) {
				t.Errorf("round %d input %d: decoded %v, proto.Unmarshal gives %v", round, i, r.StreamAudioRequest, want)
			}
		}
	}
	if err := r.DecodeReusing(inputs[1]); err != nil || r.StreamAudioRequest != &r.msg || &r.GetChunk().Data[0] != &r.data[0] {
		t.Errorf("a plain 3200-byte chunk did not decode into the reused storage (err %v)", err)
	}
	if err := r.DecodeReusing(inputs[2]); err != nil || len(r.GetChunk().Data) > 0 && len(r.data) > 0 && &r.GetChunk().Data[0] == &r.data[0] {
		t.Errorf("a chunk over %d bytes was decoded into the kept storage (err %v)", maxReusedChunk, err)
	}
	r.release()
	if r.data != nil || r.chunk.Data != nil {
		t.Error("release kept the chunk storage")
	}
}

// TestAudioRequestAllocatesNothingPerChunk: a stream of plain chunks decodes without allocating.
func TestAudioRequestAllocatesNothingPerChunk(t *testing.T) {
	r := newAudioRequest()
	chunks := [][]byte{
		chunkRequest(&sttv1.AudioChunk{Data: bytes.Repeat([]byte{1}, 3200), Seq: 1}),
		chunkRequest(&sttv1.AudioChunk{Data: bytes.Repeat([]byte{2}, 3000), Seq: 2, CapturedAt: timestamppb.Now()}),
	}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.DecodeReusing(chunks[i%2]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("DecodeReusing allocates %v times per chunk, want 0", allocs)
	}
}

// FuzzAudioRequest compares DecodeReusing with proto.Unmarshal on any bytes, one value reused
// across inputs as StreamAudio does.
func FuzzAudioRequest(f *testing.F) {
	for _, b := range audioRequestInputs() {
		f.Add(b)
	}
	r := newAudioRequest()
	f.Fuzz(func(t *testing.T, b []byte) {
		want := new(sttv1.StreamAudioRequest)
		wantErr := proto.Unmarshal(b, want)
		gotErr := r.DecodeReusing(b)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("DecodeReusing error = %v, proto.Unmarshal error = %v", gotErr, wantErr)
		}
		if wantErr == nil && !proto.Equal(r.StreamAudioRequest, want) {
			t.Fatalf("decoded %v, proto.Unmarshal gives %v", r.StreamAudioRequest, want)
		}
	})
}

package stt

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	sttv1 "github.com/classwaves/classwaves/pkg/api/classwaves/stt/v1"
	"github.com/classwaves/classwaves/pkg/apperr"
	"github.com/classwaves/classwaves/pkg/authn"
)

func TestListTranscripts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	session, g1, g2 := newID(), newID(), newID()
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 5 {
		group := g1
		if i%2 == 1 {
			group = g2
		}
		tr := Transcript{
			ID: newID(), SessionID: session, GroupID: group, SchoolID: schoolA,
			WindowStart: t0.Add(time.Duration(i) * 15 * time.Second), WindowEnd: t0.Add(time.Duration(i+1) * 15 * time.Second),
			Text: "text", Confidence: 0.8, CreatedAt: t0,
		}
		if err := h.store.InsertTranscript(ctx, tr); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tr.ID)
	}
	list := func(pctx context.Context, req *sttv1.ListTranscriptsRequest) ([]string, string, error) {
		resp, err := h.client.ListTranscripts(pctx, req)
		var out []string
		for _, tr := range resp.GetTranscripts() {
			out = append(out, tr.GetId())
		}
		return out, resp.GetNextPageToken(), err
	}
	teacher := as(authn.RoleTeacher, schoolA)

	// Paging through the session, two at a time.
	var all []string
	tok := ""
	for range 10 {
		page, next, err := list(teacher, &sttv1.ListTranscriptsRequest{SessionId: session, Limit: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if tok = next; tok == "" {
			break
		}
	}
	if diff := cmp.Diff(ids, all); diff != "" {
		t.Errorf("paged listing mismatch (-want +got):\n%s", diff)
	}

	tests := []struct {
		name string
		ctx  context.Context
		req  *sttv1.ListTranscriptsRequest
		want []string
		code codes.Code
		rsn  string
	}{
		{"one group", teacher, &sttv1.ListTranscriptsRequest{SessionId: session, GroupId: g2}, []string{ids[1], ids[3]}, codes.OK, ""},
		{"since", teacher, &sttv1.ListTranscriptsRequest{SessionId: session, Since: timestamppb.New(t0.Add(45 * time.Second))}, ids[3:], codes.OK, ""},
		{"super admin", as(authn.RoleSuperAdmin, ""), &sttv1.ListTranscriptsRequest{SessionId: session, GroupId: g1}, []string{ids[0], ids[2], ids[4]}, codes.OK, ""},
		{"another school's teacher", as(authn.RoleTeacher, schoolB), &sttv1.ListTranscriptsRequest{SessionId: session}, nil, codes.PermissionDenied, ""},
		{"unknown session", teacher, &sttv1.ListTranscriptsRequest{SessionId: newID()}, nil, codes.OK, ""},
		{"bad page token", teacher, &sttv1.ListTranscriptsRequest{SessionId: session, PageToken: "bm90LWEtdG9rZW4"}, nil, codes.InvalidArgument, "INVALID_PAGE_TOKEN"},
		{"no principal", ctx, &sttv1.ListTranscriptsRequest{SessionId: session}, nil, codes.Unauthenticated, ""},
		{"not a UUID", teacher, &sttv1.ListTranscriptsRequest{SessionId: "x"}, nil, codes.InvalidArgument, "VALIDATION_ERROR"},
	}
	for _, tt := range tests {
		got, _, err := list(tt.ctx, tt.req)
		st := status.Convert(err)
		if st.Code() != tt.code || (tt.rsn != "" && apperr.ReasonOf(st) != tt.rsn) {
			t.Errorf("%s: %v, want %v %s", tt.name, err, tt.code, tt.rsn)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestPageToken(t *testing.T) {
	t.Parallel()
	c := Cursor{WindowStart: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ID: newID()}
	got, err := DecodePageToken(EncodePageToken(c))
	if err != nil || !got.WindowStart.Equal(c.WindowStart) || got.ID != c.ID {
		t.Errorf("round trip = %+v, %v; want %+v", got, err, c)
	}
	for _, bad := range []string{"", "!!", "djF8eA", EncodePageToken(Cursor{ID: "not-a-uuid"})} {
		if _, err := DecodePageToken(bad); err == nil {
			t.Errorf("DecodePageToken(%q) accepted", bad)
		}
	}
}

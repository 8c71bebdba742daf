package grpcserver

import (
	"errors"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/classwaves/classwaves/pkg/apperr"
)

// brokenRuleMessage returns a message whose only rule is a CEL expression that does not compile.
func brokenRuleMessage(t *testing.T) proto.Message {
	t.Helper()
	opts := &descriptorpb.FieldOptions{}
	proto.SetExtension(opts, validate.E_Field, validate.FieldRules_builder{
		Cel: []*validate.Rule{validate.Rule_builder{Id: proto.String("broken"), Expression: proto.String("this +")}.Build()},
	}.Build())
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:       proto.String("cwtest/v1/broken.proto"),
		Package:    proto.String("cwtest.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"buf/validate/validate.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Broken"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name:    proto.String("x"),
				Number:  proto.Int32(1),
				Type:    descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				Label:   descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
				Options: opts,
			}},
		}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return dynamicpb.NewMessage(fd.Messages().ByName("Broken"))
}

func TestValidateRequest(t *testing.T) {
	const minLen = "must be at least 1 characters"
	tests := []struct {
		name string
		msg  any
		want *apperr.Error // nil means valid
	}{
		{"valid", newReq("title", "a"), nil},
		{"no rules", &emptypb.Empty{}, nil},
		{"not a proto message", "text", nil},
		{
			name: "violations in field order",
			msg:  newReq("", "a", ""),
			want: &apperr.Error{
				Code:    codes.InvalidArgument,
				Reason:  "VALIDATION_ERROR",
				Message: "invalid request: title: " + minLen + "; groups[1].name: " + minLen,
				Fields: []apperr.FieldViolation{
					{Field: "title", Description: minLen},
					{Field: "groups[1].name", Description: minLen},
				},
			},
		},
		{
			name: "a rule that cannot be evaluated is a server fault",
			msg:  brokenRuleMessage(t),
			want: &apperr.Error{Code: codes.Internal, Reason: "INTERNAL_ERROR", Message: "internal error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateRequest(protovalidate.GlobalValidator, tt.msg)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("validateRequest() = %v, want nil", err)
				}
				return
			}
			got, ok := errors.AsType[*apperr.Error](err)
			if !ok {
				t.Fatalf("validateRequest() = %v, want an *apperr.Error", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(apperr.Error{})); diff != "" {
				t.Errorf("validateRequest() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

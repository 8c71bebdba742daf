package authn

import (
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/classwaves/classwaves/pkg/api/classwaves/auth/v1"
)

// Token format constants, shared by the issuer (services/auth/token) and the Verifier.
const (
	// Algorithm is the only JWS algorithm ClassWaves signs and accepts (Ed25519, RFC 8037).
	Algorithm = "EdDSA"
	// TokenType is the typ header of an access token (RFC 9068), so no other JWT signed with the
	// same keys could ever pass for one.
	TokenType = "at+jwt"
	// MaxTokenLen bounds a token before any parsing; real tokens are well under 1 KiB.
	MaxTokenLen = 8192
	// maxKeyIDLen bounds the kid header before it is looked up.
	maxKeyIDLen = 128
)

// Claims is the payload of a ClassWaves access token:
//
//	iss, aud, sub, jti, iat, nbf, exp   registered claims (RFC 7519)
//	role                                teacher, admin, super_admin, student or service
//	school_id                           staff and students
//	session_id, group_id                students only: the one session and group the token opens
//	email                               staff only, optional
type Claims struct {
	jwt.RegisteredClaims
	Role      Role   `json:"role"`
	SchoolID  string `json:"school_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	GroupID   string `json:"group_id,omitempty"`
	Email     string `json:"email,omitempty"`
}

// Principal returns the caller the claims describe.
func (c *Claims) Principal() Principal {
	return Principal{
		Subject:   c.Subject,
		Role:      c.Role,
		SchoolID:  c.SchoolID,
		SessionID: c.SessionID,
		GroupID:   c.GroupID,
	}
}

// Proto returns the claims as the auth API's Claims message (VerifyToken, GetCurrentUser).
func (c *Claims) Proto() *authv1.Claims {
	out := &authv1.Claims{
		Subject:   c.Subject,
		Role:      string(c.Role),
		SchoolId:  c.SchoolID,
		SessionId: c.SessionID,
		GroupId:   c.GroupID,
		TokenId:   c.ID,
		Email:     c.Email,
	}
	if c.IssuedAt != nil {
		out.IssuedAt = timestamppb.New(c.IssuedAt.Time)
	}
	if c.ExpiresAt != nil {
		out.ExpiresAt = timestamppb.New(c.ExpiresAt.Time)
	}
	return out
}

// errStaffOnlyEmail is reported for an email claim on a non-staff token.
var errStaffOnlyEmail = errors.New("only staff tokens carry an email")

// Check reports a principal no access token may carry. The issuer checks before it signs and
// the verifier after it verified, so both hold tokens to one shape:
//   - every principal has a subject and a known role;
//   - teachers and admins belong to a school; a super admin may (it acts across schools);
//   - a student belongs to a school and is scoped to exactly one session and group;
//   - a service has a subject (its name) and nothing else;
//   - only students carry a session and group.
func (p Principal) Check() error {
	if p.Subject == "" {
		return errors.New("subject is empty")
	}
	switch p.Role {
	case RoleTeacher, RoleAdmin:
		if p.SchoolID == "" {
			return fmt.Errorf("%s without school_id", p.Role)
		}
	case RoleSuperAdmin:
	case RoleStudent:
		if p.SchoolID == "" || p.SessionID == "" || p.GroupID == "" {
			return errors.New("student without school_id, session_id and group_id")
		}
		return nil
	case RoleService:
		if p.SchoolID != "" {
			return errors.New("service principal with a school_id")
		}
	default:
		return fmt.Errorf("unknown role %q", p.Role)
	}
	if p.SessionID != "" || p.GroupID != "" {
		return fmt.Errorf("%s with a session or group scope", p.Role)
	}
	return nil
}

// IsStaff reports whether r is a staff role: teacher, admin or super_admin.
func (r Role) IsStaff() bool {
	return r == RoleTeacher || r == RoleAdmin || r == RoleSuperAdmin
}

// Check reports claims no access token may carry: Principal.Check, and only staff carry an email.
// The issuer calls it before signing; the Verifier after the signature and registered claims.
func (c *Claims) Check() error {
	if err := c.Principal().Check(); err != nil {
		return err
	}
	if c.Email != "" && !c.Role.IsStaff() {
		return errStaffOnlyEmail
	}
	return nil
}

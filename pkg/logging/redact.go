package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
)

// Replacement texts. They contain no character the patterns below match across, so a replacement
// never joins its neighbours into a new match.
const (
	redacted      = "[REDACTED]"
	redactedEmail = "[REDACTED_EMAIL]"
	redactedToken = "[REDACTED_TOKEN]"
	redactedIP    = "[REDACTED_IP]"
)

var (
	// Bearer credentials (RFC 6750 token68): "Bearer abc.def". Basic is left to key redaction
	// (authorization): "basic" is too common an English word to match in free text.
	bearerRe = regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*`)
	// JWT/JWS/JWE: base64url parts separated by dots, the first a JSON header (so "eyJ").
	jwtRe = regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*){0,2}`)
	// Credentials inside a URL: postgres://user:pass@host.
	userinfoRe = regexp.MustCompile(`://[^/\s:@]+:[^/\s@]*@`)
	// Email addresses, Unicode letters allowed. The domain needs a dot.
	emailRe = regexp.MustCompile(`[\p{L}\p{N}_.%+\-']+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)+`)
	// IPv6 candidates; each is confirmed by netip so clock times (12:30:45) survive.
	ipv6Re = regexp.MustCompile(`(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]*(?:%[0-9A-Za-z_\-]+)?`)
	// Dotted quads (also invalid ones like 999.1.1.1: erring on the side of privacy).
	ipv4Re = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)
)

// Redact returns s with email addresses, bearer credentials, JWTs, URL passwords and IP
// addresses replaced by [REDACTED_EMAIL], [REDACTED_TOKEN], [REDACTED] and [REDACTED_IP].
// Strings that cannot contain any of them are returned as they are, without allocating.
func Redact(s string) string {
	var at, colon, dot int
	var bearer, jwt bool
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '@':
			at++
		case ':':
			colon++
		case '.':
			dot++
		case 'b', 'B':
			bearer = bearer || hasPrefixFold(s[i:], "bearer")
		case 'e':
			jwt = jwt || strings.HasPrefix(s[i:], "eyJ")
		}
	}
	if bearer {
		s = bearerRe.ReplaceAllLiteralString(s, redactedToken)
	}
	if jwt && dot >= 2 {
		s = jwtRe.ReplaceAllLiteralString(s, redactedToken)
	}
	if at > 0 {
		if colon > 0 {
			s = userinfoRe.ReplaceAllLiteralString(s, "://"+redacted+"@")
		}
		s = emailRe.ReplaceAllLiteralString(s, redactedEmail)
	}
	if colon >= 2 {
		s = redactIPv6(s)
	}
	if dot >= 3 {
		s = ipv4Re.ReplaceAllLiteralString(s, redactedIP)
	}
	return s
}

// redactIPv6 replaces the IPv6 candidates in s that are addresses. A candidate glued to a word
// character on its left (std::vector) is not one; sentence punctuation glued on its right
// ("from ::1.") is allowed for.
func redactIPv6(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range ipv6Re.FindAllStringIndex(s, -1) {
		start, end := m[0], m[1]
		if start > 0 && isWordByte(s[start-1]) {
			continue
		}
		c := s[start:end]
		for _, cand := range []string{c, strings.TrimRight(c, ".:")} {
			if ip, err := netip.ParseAddr(cand); err == nil && ip.Is6() {
				b.WriteString(s[last:start])
				b.WriteString(redactedIP)
				last = start + len(cand)
				break
			}
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Key classes, compared after lower-casing and removing '-', '_', '.' and spaces, so accessToken,
// refresh_token, X-Api-Key and Set-Cookie all normalise onto them.
var (
	sensitiveParts = []string{"password", "passwd", "secret", "cookie", "authorization", "apikey", "credential", "privatekey"}
	// Suffixes rather than substrings so token counts (promptTokens) and flags (emailVerified) stay.
	sensitiveSuffixes = []string{"token", "email", "emails", "emailaddress", "jwt"}
	sensitiveExact    = map[string]bool{
		"auth": true, "otp": true,
		"ip": true, "ips": true, "ipaddr": true, "ipaddress": true, "clientip": true, "clientipaddress": true,
		"remoteip": true, "realip": true, "xrealip": true, "userip": true, "sourceip": true, "srcip": true,
		"peerip": true, "remoteaddr": true, "remoteaddress": true, "peeraddr": true,
		"xforwardedfor": true, "forwardedfor": true, "forwarded": true,
	}
)

// SensitiveKey reports whether a value stored under key must never be logged: authorization,
// cookies, tokens, passwords, secrets, API keys, emails and client IP addresses, in any casing and
// with -/_ separators or prefixes (accessToken, x-api-key, set-cookie, clientIp).
func SensitiveKey(key string) bool {
	var buf [64]byte
	n := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '-' || c == '_' || c == '.' || c == ' ':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		if n == len(buf) {
			// Unusually long keys: judge the first 64 significant bytes and the raw key.
			return sensitiveNormalized(string(buf[:n])) || sensitiveNormalized(strings.ToLower(key))
		}
		buf[n] = c
		n++
	}
	return sensitiveNormalized(string(buf[:n]))
}

func sensitiveNormalized(k string) bool {
	if sensitiveExact[k] {
		return true
	}
	for _, p := range sensitiveParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	for _, s := range sensitiveSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// redactAny renders a value of any type for the log with the same redaction as strings: errors by
// their message; everything else through its JSON form, whose object keys and strings are redacted
// while the structure is kept. A value whose marshalling panics is logged like slog does, never
// crashing the caller.
func redactAny(v any) (out any) {
	defer func() {
		if r := recover(); r != nil {
			if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
				out = "<nil>"
				return
			}
			out = Redact(fmt.Sprintf("!PANIC: %v", r))
		}
	}()
	switch x := v.(type) {
	case nil:
		return nil
	case error:
		return Redact(x.Error())
	case string:
		return Redact(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Redact(fmt.Sprintf("%+v", v))
	}
	r, err := redactJSON(b)
	if err != nil {
		return Redact(string(b))
	}
	return json.RawMessage(r)
}

// redactJSON rewrites one JSON document: values under sensitive keys become "[REDACTED]" and every
// string (keys included) goes through Redact. Numbers keep their exact text.
func redactJSON(doc []byte) ([]byte, error) {
	w := jsonWalker{dec: json.NewDecoder(bytes.NewReader(doc))}
	w.dec.UseNumber()
	w.out.Grow(len(doc))
	if err := w.value(false); err != nil {
		return nil, err
	}
	return w.out.Bytes(), nil
}

type jsonWalker struct {
	dec *json.Decoder
	out bytes.Buffer
}

func (w *jsonWalker) value(hide bool) error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	if hide {
		if d, ok := tok.(json.Delim); ok {
			if err := w.skip(d); err != nil {
				return err
			}
		}
		w.str(redacted)
		return nil
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			w.out.WriteByte('{')
			for i := 0; w.dec.More(); i++ {
				kt, err := w.dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				if i > 0 {
					w.out.WriteByte(',')
				}
				w.str(Redact(key))
				w.out.WriteByte(':')
				if err := w.value(SensitiveKey(key)); err != nil {
					return err
				}
			}
			w.out.WriteByte('}')
		case '[':
			w.out.WriteByte('[')
			for i := 0; w.dec.More(); i++ {
				if i > 0 {
					w.out.WriteByte(',')
				}
				if err := w.value(false); err != nil {
					return err
				}
			}
			w.out.WriteByte(']')
		}
		_, err := w.dec.Token() // the closing delimiter
		return err
	case string:
		w.str(Redact(t))
	case json.Number:
		w.out.WriteString(t.String())
	case bool:
		if t {
			w.out.WriteString("true")
		} else {
			w.out.WriteString("false")
		}
	case nil:
		w.out.WriteString("null")
	}
	return nil
}

// skip consumes the rest of a composite value whose opening delimiter was just read.
func (w *jsonWalker) skip(open json.Delim) error {
	if open != '{' && open != '[' {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

func (w *jsonWalker) str(s string) {
	b, _ := json.Marshal(s) // a string always marshals
	w.out.Write(b)
}

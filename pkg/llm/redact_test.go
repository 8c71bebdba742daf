package llm

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	names := []string{"Maria Lopez", "Jayden", "Will Young", "Anne-Marie de la Cruz", "Zoë", "Li"}
	tests := []struct{ in, want string }{
		{"Maria Lopez thinks plants need light.", "[student] thinks plants need light."},
		{"maria said so", "[student] said so"},
		{"MARIA, what about you?", "[student], what about you?"},
		{"Ask Lopez.", "Ask [student]."},
		{"Jayden's idea was good", "[student]'s idea was good"},
		{"Jaydenx is not a name here", "Jaydenx is not a name here"},
		{"I will ask Will.", "I will ask [student]."},
		{"Will Young and will young", "[student] and [student]"},
		{"young plants will grow; Young!", "young plants will grow; [student]!"},
		{"we will see", "we will see"},
		{"Anne-Marie de la Cruz and Anne-Marie", "[student] and [student]-[student]"},
		{"la la la", "la la la"},
		{"Cruz agrees", "[student] agrees"},
		{"zoë and ZOË agree", "[student] and [student] agree"},
		{"Zoe is someone else", "Zoe is someone else"},
		{"Li and lichen", "[student] and lichen"},
		{"write to maria.lopez@school.org or m_l+1@mail.example.co.uk", "write to [email] or [email]"},
		{"it's maria dot lopez at gmail dot com", "it's [email]"},
		{"the dot product at zero", "the dot product at zero"},
		{"Maria\nLopez", "[student]\n[student]"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Redact(tt.in, names); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Redact("Maria and a@b.io", nil); got != "Maria and [email]" {
		t.Errorf("Redact without names = %q", got)
	}
	if got := Redact("[student] met the student", []string{"Student"}); got != "[student] met the [student]" {
		t.Errorf("Redact keeps placeholders: got %q", got)
	}
}

// checkRedacted fails when out still holds an e-mail address or a name part Redact promises to
// remove, checked by other means than Redact's own matcher.
func checkRedacted(t *testing.T, in, out string, names []string) {
	t.Helper()
	if emailRE.MatchString(out) {
		t.Fatalf("Redact(%q) = %q still holds an e-mail address", in, out)
	}
	words := strings.FieldsFunc(out, func(r rune) bool { return !isWordRune(r) })
	for _, name := range names {
		for _, part := range strings.FieldsFunc(name, func(r rune) bool { return !isWordRune(r) }) {
			lower := strings.ToLower(part)
			if utf8.RuneCountInString(part) < 2 || !hasLetter(part) || nameParticles[lower] || commonWords[lower] ||
				strings.EqualFold(part, "student") || strings.EqualFold(part, "email") {
				continue
			}
			for _, w := range words {
				if strings.EqualFold(w, part) {
					t.Fatalf("Redact(%q, %q) = %q still holds %q", in, names, out, part)
				}
			}
		}
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("Maria Lopez said hi to maria@x.org", "Maria Lopez")
	f.Add("Will will win", "Will")
	f.Add("Zoë's turn; ZOË!", "Zoë")
	f.Add("a\xffb Maria", "Maria")
	f.Add("ǅemal and ǆemal", "Ǆemal")
	f.Add("K and k and \u212a", "Kk")
	f.Fuzz(func(t *testing.T, text, name string) {
		names := []string{name}
		out := Redact(text, names)
		if utf8.ValidString(text) && !utf8.ValidString(out) {
			t.Fatalf("Redact(%q) = %q is not valid UTF-8", text, out)
		}
		checkRedacted(t, text, out, names)
	})
}

func BenchmarkRedactNoAddress(b *testing.B) {
	names := []string{}
	for _, n := range strings.Fields("Maria Jayden Sofia Liam Noah Olivia Emma Ava Mia Lucas Ethan Amelia Harper Evelyn Mason Logan Elijah Aria Chloe Ella") {
		names = append(names, n+" Lopez-Garcia")
	}
	text := strings.Repeat("So I think Maria is right that the plants need light, but Ethan said water matters more. ", 250)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Redact(text, names)
	}
}

func BenchmarkRedact(b *testing.B) {
	names := []string{}
	for _, n := range strings.Fields("Maria Jayden Sofia Liam Noah Olivia Emma Ava Mia Lucas Ethan Amelia Harper Evelyn Mason Logan Elijah Aria Chloe Ella") {
		names = append(names, n+" Lopez-Garcia")
	}
	text := strings.Repeat("So I think Maria is right that the plants need light, but Ethan said water matters more, email me at ethan.g@school.org. ", 200)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Redact(text, names)
	}
}

package l10n

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestVerbs(t *testing.T) {
	for _, tt := range []struct {
		format string
		want   string
	}{
		{"no verb", ""},
		{"100%% done", ""},
		{"%s and %d", "%[1]s %[2]d"},
		{"%[2]s then %[1]s", "%[2]s %[1]s"},
		{"%-10[1]s|%3[2]d", "%[1]s %[2]d"},
		{"%[1]3d", "%[1]!"},
		{"%[1]-10s", "%[1]-"}, // fmt takes the - for the verb
		{"%*d", "%[1]* %[2]d"},
		{"%.*[1]f", "%[1]* %[1]f"},
		{"%[0]s", "%[1]!"},
		{"%[x]s", "%[1]!"},
		{"%[2]w: %[1]s", "%[2]w %[1]s"},
		{"end %", "%[1]!"},
		{"%q %v %%", "%[1]q %[2]v"},
		{"unicode %é", "%[1]é"},
	} {
		var got []string
		for _, v := range Verbs(tt.format) {
			got = append(got, v.String())
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("Verbs(%q) = %q, want %q", tt.format, g, tt.want)
		}
	}
}

// FuzzVerbs checks Verbs against fmt itself: fmt reports a bad verb as %!x(BADINDEX) or
// %!(NOVERB) exactly where Verbs says '!', and reads exactly the arguments Verbs names.
func FuzzVerbs(f *testing.F) {
	for _, s := range []string{"%s", "%[2]d %[1]s", "%[1]3d", "%-10[1]s", "%*.*f", "%[3]*.[2]*[1]f", "%", "%%", "%[", "%[1", "%.[2]d", "%5.2f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vs := Verbs(s)
		bad := false
		maxArg := 0
		for _, v := range vs {
			if v.Verb == '!' {
				bad = true
			}
			maxArg = max(maxArg, v.Arg)
		}
		// Arguments of the kinds a text takes; '*' wants an int, which 7 is.
		args := make([]any, min(maxArg, 20))
		for i := range args {
			args[i] = 7
		}
		out := fmt.Sprintf(s, args...)
		if !bad && maxArg <= 20 && (strings.Contains(out, "BADINDEX") || strings.Contains(out, "NOVERB")) && !strings.Contains(s, "BADINDEX") && !strings.Contains(s, "NOVERB") {
			t.Errorf("Verbs(%q) = %v, but fmt says %q", s, vs, out)
		}
		if bad && maxArg <= 20 && !strings.Contains(out, "%!") {
			t.Errorf("Verbs(%q) = %v finds a bad verb, but fmt formats it: %q", s, vs, out)
		}
		if !reflect.DeepEqual(vs, Verbs(s)) {
			t.Errorf("Verbs(%q) is not deterministic", s)
		}
	})
}

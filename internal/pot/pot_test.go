package pot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/leonelquinteros/gotext/plurals"

	"tails-backup/internal/testtool"
	"tails-backup/l10n"
)

// root is the project's folder, from this package's.
const root = "../.."

// languages are the catalogs the project must have complete.
var languages = []string{"fr", "ar"}

func TestExtractGo(t *testing.T) {
	msgs, err := ExtractGo("testdata/src")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		s := fmt.Sprintf("%q/%q @%s", m.ID, m.Plural, strings.Join(m.Refs, ","))
		if len(m.Comments) > 0 {
			s += " #" + strings.Join(m.Comments, "|")
		}
		got = append(got, s)
	}
	want := []string{
		`"Plain text."/"" @demo/demo.go:11,demo/demo.go:19`,
		`"%s was unplugged."/"" @demo/demo.go:13 #TRANSLATORS: %s names a stick.`,
		`"Joined text."/"" @demo/demo.go:14`,
		`"A described command."/"" @demo/demo.go:15`,
		`"%d file"/"%d files" @demo/demo.go:17`,
		`"marked text"/"" @demo/demo.go:18`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("ExtractGo found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestGenerateKeepsNonASCII: the texts of the app with characters outside ASCII ("…", "–")
// reach the template whole. xgettext with --omit-header has no charset to declare and cut them
// at the first such character ("Starting…" became "Starting", which the app never asks for, so
// it stayed English in every language).
func TestGenerateKeepsNonASCII(t *testing.T) {
	testtool.Program(t, "xgettext", "gettext")
	testtool.Program(t, "msgcat", "gettext")
	out := filepath.Join(t.TempDir(), "demo.pot")
	if err := Generate(context.Background(), "testdata/gen", out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range readPO(t, out) {
		if e.Key() != "\x00" {
			got = append(got, e.ID+"|"+e.Plural)
		}
	}
	slices.Sort(got)
	want := []string{"Create a backup Tails…|", "Go text – with a dash|", "Plain text|", "Starting…|", "{n} file – copied|{n} files – copied"}
	if !slices.Equal(got, want) {
		t.Errorf("the template has %q; want %q", got, want)
	}
}

func readPO(t *testing.T, path string) []Entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	es, err := ParsePO(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return es
}

// TestTemplateIsCurrent fails when a text of the code is missing from the committed template,
// or when the template still has a text the code no longer has: run `make pot`.
func TestTemplateIsCurrent(t *testing.T) {
	testtool.Program(t, "xgettext", "gettext")
	testtool.Program(t, "msgcat", "gettext")
	fresh := filepath.Join(t.TempDir(), "tails-backup.pot")
	if err := Generate(context.Background(), root, fresh); err != nil {
		t.Fatal(err)
	}
	keys := func(es []Entry) map[string]Entry {
		m := map[string]Entry{}
		for _, e := range es {
			if e.Key() != "\x00" {
				m[e.Key()] = e
			}
		}
		return m
	}
	want, have := keys(readPO(t, fresh)), keys(readPO(t, filepath.Join(root, "po", "tails-backup.pot")))
	for k, e := range want {
		if _, ok := have[k]; !ok {
			t.Errorf("po/tails-backup.pot lacks %q (in the code): run make pot, then translate it in po/*.po", e.ID)
		}
	}
	for k, e := range have {
		if _, ok := want[k]; !ok {
			t.Errorf("po/tails-backup.pot has %q, which the code no longer has: run make pot", e.ID)
		}
	}
}

// TestCatalogs checks each catalog against the template: complete, marked for review,
// compiling with msgfmt -c (which checks the C and Python formats), the Go verbs of each
// translation those of its msgid, and every translation formatting without a fmt error.
func TestCatalogs(t *testing.T) {
	msgfmt := testtool.Program(t, "msgfmt", "gettext")
	tmpl := readPO(t, filepath.Join(root, "po", "tails-backup.pot"))
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			path := filepath.Join(root, "po", lang+".po")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.ToLower(string(raw)), "needs review by a native speaker") {
				t.Errorf("%s does not say in its header that it needs review by a native speaker", path)
			}
			cat := readPO(t, path)
			nplurals, forms := pluralForms(t, Header(cat, "Plural-Forms"))
			byKey := map[string]Entry{}
			for _, e := range cat {
				byKey[e.Key()] = e
			}
			for _, te := range tmpl {
				if te.Key() == "\x00" {
					continue
				}
				e, ok := byKey[te.Key()]
				switch {
				case !ok:
					t.Errorf("%s: no translation of %q", path, te.ID)
					continue
				case e.HasFlag("fuzzy"):
					t.Errorf("%s:%d: %q is fuzzy", path, e.Line, te.ID)
				case te.Plural != "" && len(e.Str) != nplurals:
					t.Errorf("%s:%d: %q has %d plural forms, the header says %d", path, e.Line, te.ID, len(e.Str), nplurals)
				}
				for _, s := range e.Str {
					if s == "" {
						t.Errorf("%s:%d: %q is not translated", path, e.Line, te.ID)
					}
				}
				if te.HasFlag("python-format") || te.HasFlag("python-brace-format") || !goText(te) {
					continue // msgfmt checks the Python formats; the .ui files have none
				}
				for _, msg := range checkVerbs(te, e, forms) {
					t.Errorf("%s:%d: %s", path, e.Line, msg)
				}
			}

			dir := t.TempDir()
			mo := filepath.Join(dir, lang, "LC_MESSAGES", l10n.Domain+".mo")
			if err := os.MkdirAll(filepath.Dir(mo), 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(msgfmt, "-c", "--check-format", "-o", mo, path).CombinedOutput(); err != nil {
				t.Fatalf("msgfmt -c %s: %v\n%s", path, err, out)
			}
			loc := l10n.Load([]string{lang}, dir)
			if loc.Lang() != lang {
				t.Fatalf("the compiled catalog of %s does not load", lang)
			}
			for _, te := range tmpl {
				if te.Key() == "\x00" || !goText(te) {
					continue
				}
				for _, msg := range formatAll(loc, te, forms) {
					t.Errorf("%s: %s", path, msg)
				}
			}
		})
	}
}

// goText: the entry comes from the Go code (the Python's and the .ui files' are not Go formats).
func goText(e Entry) bool {
	return !e.HasFlag("python-format") && !e.HasFlag("python-brace-format")
}

// pluralForms reads a Plural-Forms header: its count, and for each form the values of n
// (among 0..1000) that take it.
func pluralForms(t *testing.T, header string) (int, [][]int) {
	t.Helper()
	var n int
	var expr string
	for _, part := range strings.Split(header, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.TrimSpace(k) {
		case "nplurals":
			fmt.Sscan(v, &n)
		case "plural":
			expr = strings.TrimSpace(v)
		}
	}
	e, err := plurals.Compile(expr)
	if n < 1 || err != nil {
		t.Fatalf("Plural-Forms %q cannot be read (%v)", header, err)
	}
	forms := make([][]int, n)
	for i := 0; i <= 1000; i++ {
		f := e.Eval(uint32(i))
		if f < 0 || f >= n {
			t.Fatalf("Plural-Forms %q gives form %d for %d", header, f, i)
		}
		forms[f] = append(forms[f], i)
	}
	for i, f := range forms {
		if len(f) == 0 {
			t.Errorf("Plural-Forms %q: no number takes form %d", header, i)
		}
	}
	return n, forms
}

// checkVerbs compares the Go verbs of a translation with its msgid's (the plural msgid's for
// a text with plural forms, whose singular may leave the count out: "an hour"). A form that
// serves a single number (Arabic's "one", "two") may leave verbs out too; any other form has
// exactly the original's.
func checkVerbs(te, e Entry, forms [][]int) []string {
	ref := te.ID
	if te.Plural != "" {
		ref = te.Plural
	}
	want := l10n.VerbSet(ref)
	var msgs []string
	for i, s := range e.Str {
		got := l10n.VerbSet(s)
		single := te.Plural != "" && i < len(forms) && len(forms[i]) == 1
		switch {
		case slices.Equal(got, want):
		case single && subset(got, want):
		default:
			msgs = append(msgs, fmt.Sprintf("the verbs of %q (form %d) are %v, not those of its original %v: %q", s, i, got, want, ref))
		}
	}
	return msgs
}

func subset(a, b []l10n.Verb) bool {
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

// formatAll formats every form of a Go text's translation with arguments of its verbs' kinds,
// as the code does, and reports fmt's complaints ("%!d(string=...)", "%!(EXTRA ...)").
func formatAll(loc *l10n.Locale, te Entry, forms [][]int) []string {
	ref := te.ID
	if te.Plural != "" {
		ref = te.Plural
	}
	verbs := l10n.Verbs(ref)
	if len(verbs) == 0 {
		return nil
	}
	n := 0
	for _, v := range verbs {
		n = max(n, v.Arg)
	}
	args := make([]any, n)
	for _, v := range verbs {
		switch v.Verb {
		case 'd', '*':
			args[v.Arg-1] = 7
		case 'w':
			args[v.Arg-1] = errors.New("cause")
		case 'f':
			args[v.Arg-1] = 1.5
		default:
			args[v.Arg-1] = "x"
		}
	}
	var msgs []string
	check := func(form string) {
		var out string
		if slices.ContainsFunc(verbs, func(v l10n.Verb) bool { return v.Verb == 'w' }) {
			// The code gives such a text to fmt.Errorf itself.
			out = fmt.Errorf(form, args...).Error()
		} else {
			out = fmt.Sprintf(form, args...)
			if len(l10n.Verbs(form)) == 0 {
				out = form // l10n's format does not call fmt then
			}
		}
		if strings.Contains(out, "%!") {
			msgs = append(msgs, fmt.Sprintf("%q formats as %q", form, out))
		}
	}
	if te.Plural == "" {
		check(loc.Tr(te.ID))
		return msgs
	}
	for _, f := range forms {
		check(loc.TrN(te.ID, te.Plural, f[0]))
	}
	return msgs
}

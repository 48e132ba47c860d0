package pot

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

func TestParsePO(t *testing.T) {
	text := `# header comment
msgid ""
msgstr ""
"Language: fr\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\n"

#. TRANSLATORS: a comment
#: a.go:1
#, python-format
msgid "one %s"
msgstr "un %s"

msgid ""
"two\n"
"lines"
msgstr "deux\nlignes"

#, fuzzy
msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d fichier"
msgstr[1] "%d fichiers"

#~ msgid "obsolete"
#~ msgstr "obsolète"
`
	es, err := ParsePO(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 {
		t.Fatalf("%d entries: %+v", len(es), es)
	}
	if got := Header(es, "plural-forms"); got != "nplurals=2; plural=(n > 1);" {
		t.Errorf("Header = %q", got)
	}
	if e := es[1]; e.ID != "one %s" || e.Str[0] != "un %s" || !e.HasFlag("python-format") {
		t.Errorf("entry 1: %+v", e)
	}
	if e := es[2]; e.ID != "two\nlines" || e.Str[0] != "deux\nlignes" {
		t.Errorf("entry 2: %+v", e)
	}
	if e := es[3]; e.Plural != "%d files" || len(e.Str) != 2 || e.Str[1] != "%d fichiers" || !e.HasFlag("fuzzy") {
		t.Errorf("entry 3: %+v", e)
	}
	for _, bad := range []string{
		"msgid \"a\"\nmsgstr[1] \"b\"",
		"\"dangling\"",
		"msgid unquoted",
		"msgctxt \"c\"\nmsgid \"a\"\nmsgstr \"b\"",
	} {
		if _, err := ParsePO(bad); err == nil {
			t.Errorf("ParsePO(%q) accepts it", bad)
		}
	}
}

// FuzzParsePO: any text is parsed or refused with an error, never a panic; what is parsed
// comes back the same when written out again and read back.
func FuzzParsePO(f *testing.F) {
	f.Add("msgid \"a\"\nmsgstr \"b\"\n")
	f.Add("msgid \"%d\"\nmsgid_plural \"%d s\"\nmsgstr[0] \"x\"\nmsgstr[1] \"y\"\n")
	f.Add("#, fuzzy\nmsgid \"\"\n\"a\\n\"\nmsgstr \"\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		es, err := ParsePO(text)
		if err != nil {
			return
		}
		var b bytes.Buffer
		for _, e := range es {
			writeString(&b, "msgid", e.ID)
			if e.Plural != "" {
				writeString(&b, "msgid_plural", e.Plural)
				for i, s := range e.Str {
					writeString(&b, fmt.Sprintf("msgstr[%d]", i), s)
				}
			} else if e.Str != nil {
				writeString(&b, "msgstr", e.Str[0])
			}
			b.WriteString("\n")
		}
		again, err := ParsePO(b.String())
		if err != nil {
			t.Fatalf("ParsePO(%q) = %+v, written %q, refused: %v", text, es, b.String(), err)
		}
		if len(again) != len(es) {
			t.Fatalf("ParsePO(%q) = %d entries, %d after writing %q", text, len(es), len(again), b.String())
		}
		for i := range es {
			if again[i].Key() != es[i].Key() || !slices.Equal(again[i].Str, es[i].Str) {
				t.Errorf("entry %d: %+v, then %+v", i, es[i], again[i])
			}
		}
	})
}

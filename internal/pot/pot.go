// Package pot builds the gettext template po/tails-backup.pot from the texts of the Go code
// (the literal arguments of l10n's Tr, TrN and Mark) and of the Backup app (xgettext on its
// Python and GtkBuilder files), for `make pot` and for the test that finds a stale template.
package pot

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Message is one text to translate.
type Message struct {
	ID       string
	Plural   string   // the English plural, for TrN
	Refs     []string // "session/texts.go:12"
	Comments []string // what the code says to translators (a comment starting with TRANSLATORS:)
}

// Key identifies a message in a catalog: its msgid and its plural.
func (m Message) Key() string { return m.ID + "\x00" + m.Plural }

// skipDir: folders without the product's Go code (caches, vendored modules, test data).
func skipDir(name string) bool {
	return name == "vendor" || name == "testdata" || name == "e2e" || strings.HasPrefix(name, ".") || name == "dist" || name == "bin"
}

// ExtractGo finds the texts of the Go code under root (test files excepted), in the order of
// the files and lines. A text is the literal (or a sum of literals) first argument of a method
// Tr, the two first of TrN, and the argument of l10n.Mark.
func ExtractGo(root string) ([]Message, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	fset := token.NewFileSet()
	parsed := make([]*ast.File, len(files))
	// The string constants of each package (folder), for a text given by its name:
	// loc.Tr(statusDescription).
	consts := map[string]map[string]string{}
	for i, f := range files {
		if parsed[i], err = parser.ParseFile(fset, f, nil, parser.ParseComments); err != nil {
			return nil, err
		}
		dir := filepath.Dir(f)
		if consts[dir] == nil {
			consts[dir] = map[string]string{}
		}
		for _, d := range parsed[i].Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for j, name := range vs.Names {
					if j < len(vs.Values) {
						if v, ok := literal(vs.Values[j], nil); ok {
							consts[dir][name.Name] = v
						}
					}
				}
			}
		}
	}
	var out []Message
	index := map[string]int{}
	for i, f := range files {
		file := parsed[i]
		pkgConsts := consts[filepath.Dir(f)]
		rel, _ := filepath.Rel(root, f)
		rel = filepath.ToSlash(rel)
		comments := translatorComments(fset, file)
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			var m Message
			switch sel.Sel.Name {
			case "Tr":
				if len(call.Args) < 1 {
					return true
				}
				if m.ID, ok = literal(call.Args[0], pkgConsts); !ok {
					return true
				}
			case "TrN":
				if len(call.Args) < 3 {
					return true
				}
				var ok2 bool
				m.ID, ok = literal(call.Args[0], pkgConsts)
				m.Plural, ok2 = literal(call.Args[1], pkgConsts)
				if !ok || !ok2 {
					return true
				}
			case "Mark":
				if x, isIdent := sel.X.(*ast.Ident); !isIdent || x.Name != "l10n" || len(call.Args) != 1 {
					return true
				}
				if m.ID, ok = literal(call.Args[0], pkgConsts); !ok {
					return true
				}
			default:
				return true
			}
			line := fset.Position(call.Pos()).Line
			ref := fmt.Sprintf("%s:%d", rel, line)
			if i, seen := index[m.Key()]; seen {
				out[i].Refs = append(out[i].Refs, ref)
				out[i].Comments = appendNew(out[i].Comments, comments[line]...)
				return true
			}
			m.Refs = []string{ref}
			m.Comments = comments[line]
			index[m.Key()] = len(out)
			out = append(out, m)
			return true
		})
	}
	return out, nil
}

func appendNew(list []string, more ...string) []string {
	for _, s := range more {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// translatorComments maps a line to the TRANSLATORS: comment that ends on the line before it
// (or on it), as xgettext --add-comments=TRANSLATORS: does.
func translatorComments(fset *token.FileSet, file *ast.File) map[int][]string {
	out := map[int][]string{}
	for _, g := range file.Comments {
		text := strings.TrimSpace(g.Text())
		i := strings.Index(text, "TRANSLATORS:")
		if i < 0 {
			continue
		}
		text = strings.Join(strings.Fields(text[i:]), " ")
		end := fset.Position(g.End()).Line
		out[end+1] = append(out[end+1], text)
		out[end] = append(out[end], text)
	}
	return out
}

// literal is the value of a string literal, of a sum of them, or of a constant of consts
// (the package's string constants).
func literal(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok := literal(e.X, consts)
		b, ok2 := literal(e.Y, consts)
		return a + b, ok && ok2
	case *ast.ParenExpr:
		return literal(e.X, consts)
	}
	return "", false
}

// TemplateHeader is the template's header entry.
const TemplateHeader = `# The texts of tails-backup (the command, its session agent and the Backup app) to translate.
# Made by ` + "`make pot`" + ` (internal/pot): do not edit; translate in po/<lang>.po.
#
#, fuzzy
msgid ""
msgstr ""
"Project-Id-Version: tails-backup\n"
"Report-Msgid-Bugs-To: \n"
"Language: \n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=INTEGER; plural=EXPRESSION;\n"
`

// WriteGo writes messages as PO entries after the header.
func WriteGo(msgs []Message) []byte {
	var b bytes.Buffer
	b.WriteString(TemplateHeader)
	for _, m := range msgs {
		b.WriteString("\n")
		for _, c := range m.Comments {
			fmt.Fprintf(&b, "#. %s\n", c)
		}
		fmt.Fprintf(&b, "#: %s\n", strings.Join(m.Refs, " "))
		writeString(&b, "msgid", m.ID)
		if m.Plural != "" {
			writeString(&b, "msgid_plural", m.Plural)
			b.WriteString("msgstr[0] \"\"\nmsgstr[1] \"\"\n")
		} else {
			b.WriteString("msgstr \"\"\n")
		}
	}
	return b.Bytes()
}

// writeString writes a PO string, split after each "\n" as gettext's tools do.
func writeString(b *bytes.Buffer, key, s string) {
	esc := func(s string) string {
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
		return `"` + r.Replace(s) + `"`
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) <= 1 {
		fmt.Fprintf(b, "%s %s\n", key, esc(s))
		return
	}
	fmt.Fprintf(b, "%s \"\"\n", key)
	for _, l := range lines {
		fmt.Fprintf(b, "%s\n", esc(l))
	}
}

// Generate writes the whole template of the project at root to out: the Go texts, then the
// app's (xgettext on app/tailsbackup/*.py and app/ui/*.ui, merged with msgcat), so that the
// Python and the Go share one domain.
func Generate(ctx context.Context, root, out string) error {
	msgs, err := ExtractGo(root)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "potgen")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	goPot := filepath.Join(tmp, "go.pot")
	if err := os.WriteFile(goPot, WriteGo(msgs), 0o644); err != nil {
		return err
	}
	py, _ := filepath.Glob(filepath.Join(root, "app", "tailsbackup", "*.py"))
	ui, _ := filepath.Glob(filepath.Join(root, "app", "ui", "*.ui"))
	var rel []string
	for _, f := range append(py, ui...) {
		r, _ := filepath.Rel(root, f)
		rel = append(rel, r)
	}
	appPot := filepath.Join(tmp, "app.pot")
	args := append([]string{"--from-code=UTF-8", "--add-comments=TRANSLATORS:", "--keyword=_", "--keyword=ngettext:1,2",
		"--package-name=tails-backup", "--sort-by-file", "-o", appPot}, rel...)
	cmd := exec.CommandContext(ctx, "xgettext", args...)
	cmd.Dir = root
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("xgettext on the app: %w: %s", err, o)
	}
	inputs := []string{goPot}
	if _, err := os.Stat(appPot); err == nil { // xgettext writes nothing when it finds no text
		inputs = append(inputs, appPot)
	}
	// --use-first keeps the Go header; the texts that both sides use are one entry.
	cmd = exec.CommandContext(ctx, "msgcat", append([]string{"--use-first", "--no-wrap", "-o", out}, inputs...)...)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("msgcat: %w: %s", err, o)
	}
	return nil
}

package helper

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tails-backup/wire"
)

// reasonArg is, for each function that makes a helper failure, the index of its wire.Reason
// argument.
var reasonArg = map[string]int{
	"failf":            1, // failf(code, reason, args, err, format, ...)
	"noSpace":          0, // noSpace(reason, args, err, needed, available, format, ...)
	"writeHelperError": 2, // writeHelperError(env, code, reason, msg) in cmd/tails-backup
}

// wireReasons reads the Reason constants of package wire from its source: name → value.
func wireReasons(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("..", "wire", "reason.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			for i, n := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("wire.%s is not a string literal", n.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[n.Name] = v
			}
		}
	}
	return out
}

// TestEveryFailureHasAReason: every failure the helper sends names, as a constant of package
// wire, a non-empty Reason that the session words in the person's language; a new failf with
// an empty or computed reason, or a Failure built by hand, fails here. The session's side
// (every Reason has a sentence) is session.TestEveryReasonIsWorded.
func TestEveryFailureHasAReason(t *testing.T) {
	reasons := wireReasons(t)
	if len(reasons) != len(wire.Reasons) {
		t.Errorf("wire.go declares %d reasons, wire.Reasons lists %d", len(reasons), len(wire.Reasons))
	}
	for name, v := range reasons {
		if v == "" || strings.ToLower(v) != v || strings.ContainsAny(v, " _") {
			t.Errorf("wire.%s = %q is not a kebab-case value", name, v)
		}
		if !slices.Contains(wire.Reasons, wire.Reason(v)) {
			t.Errorf("wire.%s is missing from wire.Reasons", name)
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "cmd", "tails-backup", "helper_cmd.go"))
	fset := token.NewFileSet()
	calls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var inMaker string
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				inMaker = ""
				if _, ok := reasonArg[n.Name.Name]; ok {
					inMaker = n.Name.Name
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "Failure" && inMaker != "failf" {
					t.Errorf("%s: a Failure made without failf, so without a checked reason", fset.Position(n.Pos()))
				}
			case *ast.CallExpr:
				id, ok := n.Fun.(*ast.Ident)
				if !ok {
					return true
				}
				i, ok := reasonArg[id.Name]
				if !ok || inMaker == id.Name || (inMaker == "noSpace" && id.Name == "failf") {
					return true
				}
				calls++
				pos := fset.Position(n.Pos())
				if len(n.Args) <= i {
					t.Errorf("%s: %s with too few arguments", pos, id.Name)
					return true
				}
				sel, ok := n.Args[i].(*ast.SelectorExpr)
				pkg, _ := func() (*ast.Ident, bool) {
					if !ok {
						return nil, false
					}
					p, ok := sel.X.(*ast.Ident)
					return p, ok
				}()
				if !ok || pkg == nil || pkg.Name != "wire" {
					t.Errorf("%s: %s's reason is not a constant of package wire", pos, id.Name)
					return true
				}
				if v, ok := reasons[sel.Sel.Name]; !ok || v == "" {
					t.Errorf("%s: %s's reason wire.%s is not a wire.Reason constant", pos, id.Name, sel.Sel.Name)
				}
			}
			return true
		})
	}
	// The walk found the calls (a renamed maker would make it pass vacuously).
	if calls < 100 {
		t.Errorf("only %d failure calls found", calls)
	}
}

// TestFailureEvent: the error event carries the code, the reason and the args for the session,
// the English message for the log.
func TestFailureEvent(t *testing.T) {
	name := stick{Stick: wire.Stick{Label: "SanDisk Cruzer", Size: 8e9, Device: "/dev/sdb"}}
	f := failf(wire.CodeNotFound, wire.ReasonBackupLocked, name.on(), nil, "The Persistent Storage of the backup on %s is locked.", name)
	ev := f.event()
	if ev.Code != wire.CodeNotFound || ev.Reason != wire.ReasonBackupLocked || ev.Args == nil || *ev.Args.Stick != name.Stick ||
		ev.Message != "The Persistent Storage of the backup on the stick SanDisk Cruzer is locked." {
		t.Errorf("event %+v", ev)
	}
	if ev := failf(wire.CodeCancelled, wire.ReasonCancelled, wire.Args{}, nil, "x").event(); ev.Args != nil {
		t.Errorf("no args sent as %+v", ev.Args)
	}
	own := stick{english: "this Tails' Persistent Storage"}
	if own.w() != nil || own.String() != "this Tails' Persistent Storage" {
		t.Errorf("own: %v %q", own.w(), own)
	}
}

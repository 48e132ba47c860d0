package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"tails-backup/internal/testtool"
)

// unprivileged are the packages of the session side: the agent, the session layer, and the
// packages they and the session commands of cmd/tails-backup use. cmd/tails-backup itself is
// not one: under the name helper, the same program is the root helper.
var unprivileged = []string{
	"tails-backup/agent",
	"tails-backup/session",
	"tails-backup/pinentry",
	"tails-backup/pairing",
	"tails-backup/wire",
	"tails-backup/quiesce",
	"tails-backup/inhibit",
	"tails-backup/clock",
	"tails-backup/udisks",
	"tails-backup/notify",
	"tails-backup/sysident",
}

// privileged are the packages of the root side: the helper, the mirror it runs as root and
// the refresh of a backup's system partition.
var privileged = []string{
	"tails-backup/helper",
	"tails-backup/sync",
	"tails-backup/sysrefresh",
}

// deps returns, for each package named, the packages its code imports, directly or not (go
// list's Deps: test files are not counted, as they are not in the program).
func deps(t *testing.T, pkgs ...string) map[string][]string {
	t.Helper()
	goTool := testtool.Program(t, "go", "golang-go, or Go from go.dev")
	args := append([]string{"list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}"}, pkgs...)
	out, err := exec.Command(goTool, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	m := make(map[string][]string)
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	for _, p := range pkgs {
		if _, ok := m[p]; !ok {
			t.Fatalf("go list said nothing of %s:\n%s", p, out)
		}
	}
	return m
}

// TestUnprivilegedSideImportsNoRootPackage: the agent and the session side run as amnesia;
// the code that runs as root (the helper, sync, sysrefresh) is not linked into their packages,
// so that the root side's protocol and checks stay behind the sudo boundary and a change there
// does not reach the agent by an import.
func TestUnprivilegedSideImportsNoRootPackage(t *testing.T) {
	graph := deps(t, unprivileged...)
	for _, p := range unprivileged {
		for _, root := range privileged {
			if slices.Contains(graph[p], root) {
				t.Errorf("%s imports %s (directly or through another package): the unprivileged side must not import the root side's packages", p, root)
			}
		}
	}
}

// TestRootSideSeen: the same listing sees the root helper's imports, so an empty or
// misread listing cannot make TestUnprivilegedSideImportsNoRootPackage pass.
func TestRootSideSeen(t *testing.T) {
	graph := deps(t, "tails-backup/helper")
	for _, p := range []string{"tails-backup/sync", "tails-backup/sysrefresh", "tails-backup/wire"} {
		if !slices.Contains(graph["tails-backup/helper"], p) {
			t.Errorf("go list does not show that tails-backup/helper imports %s: %v", p, graph["tails-backup/helper"])
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/internal/testtool"
	"tails-backup/wire"
)

// The packaging of cmd/tails-backup/install/ and the Makefile's install target: `make install
// DESTDIR=...` into a temporary folder, every file checked.

// installPkgDir is where the packaging files are, relative to the repository root.
const installPkgDir = "cmd/tails-backup/install"

// installHelperLink is the target of the helper's symlink: relative, so that it holds in DESTDIR.
const installHelperLink = "../../bin/tails-backup"

// installSudoersRule is the content of the sudoers file, comments aside.
var installSudoersRule = []string{
	`Defaults!/usr/lib/tails-backup/helper env_reset, !env_keep, !env_check, !setenv`,
	`amnesia ALL = NOPASSWD: /usr/lib/tails-backup/helper ""`,
}

// installEntry is what the test knows of one installed path.
type installEntry struct {
	kind string // "d", "f" or "l"
	perm fs.FileMode
	link string // symlink target
	data []byte // file content
}

func (e installEntry) String() string {
	if e.kind == "l" {
		return "symlink to " + e.link
	}
	return fmt.Sprintf("%s %04o", e.kind, e.perm)
}

// installSnapshot lists every path under dir, relative to it.
func installSnapshot(t *testing.T, dir string) map[string]installEntry {
	t.Helper()
	out := make(map[string]installEntry)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := installEntry{perm: fi.Mode().Perm()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.kind = "l"
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.IsDir():
			e.kind = "d"
		case fi.Mode().IsRegular():
			e.kind = "f"
			if e.data, err = os.ReadFile(p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected file type %v", rel, fi.Mode().Type())
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// installRepoRoot is the root of the checkout (the test runs in cmd/tails-backup).
func installRepoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Makefile")); err != nil {
		t.Fatalf("no Makefile at the repository root %s: %v", root, err)
	}
	return root
}

// installTools returns make and go, skipping the test without them.
func installTools(t *testing.T) (makePath, goPath string) {
	t.Helper()
	return testtool.Program(t, "make", "make"), testtool.Program(t, "go", "golang-go, or Go from go.dev")
}

// installMake runs make in the repository with a umask of 022 (what packaging uses) and returns
// its combined output.
func installMake(t *testing.T, root, makePath string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `umask 022 && exec "$0" "$@"`, makePath, "-C", root}, args...)...)
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestInstall(t *testing.T) {
	root := installRepoRoot(t)
	makePath, goPath := installTools(t)
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "dest")
	bin := filepath.Join(tmp, "build", "tails-backup") // not the checkout's bin/: other builds run there
	vars := []string{"DESTDIR=" + dest, "BIN=" + bin, "GO=" + goPath}

	t.Run("DryRunWritesOnlyUnderDESTDIR", func(t *testing.T) {
		out, err := installMake(t, root, makePath, append([]string{"-n", "install"}, vars...)...)
		if err != nil {
			t.Fatalf("make -n install: %v\n%s", err, out)
		}
		checkDryRun(t, out, dest, filepath.Dir(bin))
	})

	t.Run("RefusesOtherPrefix", func(t *testing.T) {
		out, err := installMake(t, root, makePath, append([]string{"-n", "install", "PREFIX=/usr/local"}, vars...)...)
		if err == nil || !strings.Contains(out, "PREFIX must be /usr") {
			t.Fatalf("make install PREFIX=/usr/local: err %v, output:\n%s", err, out)
		}
		if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a refused install created %s (%v)", dest, err)
		}
	})

	out, err := installMake(t, root, makePath, append([]string{"install"}, vars...)...)
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	first := installSnapshot(t, dest)
	// Idempotent: a second run leaves exactly the same tree.
	if out, err := installMake(t, root, makePath, append([]string{"install"}, vars...)...); err != nil {
		t.Fatalf("make install, second run: %v\n%s", err, out)
	}
	got := installSnapshot(t, dest)
	for p, e := range first {
		if g, ok := got[p]; !ok || g.String() != e.String() || !bytes.Equal(g.data, e.data) {
			t.Errorf("the second make install changed %s: %v, then %v", p, e, g)
		}
	}
	if len(got) != len(first) {
		t.Errorf("the second make install changed the number of paths: %d, then %d", len(first), len(got))
	}

	t.Run("Files", func(t *testing.T) { checkInstalledFiles(t, root, dest, bin, got) })
	t.Run("HelperRefusesArguments", func(t *testing.T) { checkInstalledHelper(t, dest) })
	t.Run("MenuEntry", func(t *testing.T) {
		checkMenuEntry(t, filepath.Join(dest, "usr/share/applications/org.boum.tails.Backup.desktop"))
	})
	t.Run("Sudoers", func(t *testing.T) { checkSudoers(t, filepath.Join(dest, "etc/sudoers.d/tails-backup")) })
	t.Run("UserUnit", func(t *testing.T) {
		checkUserUnit(t, filepath.Join(dest, "usr/lib/systemd/user/tails-backup-agent.service"), filepath.Join(dest, "usr/bin/tails-backup"))
	})
	t.Run("PolkitRule", func(t *testing.T) {
		checkPolkitRule(t, filepath.Join(dest, "usr/share/polkit-1/rules.d/50-tails-backup.rules"))
	})
	t.Run("UdevRule", func(t *testing.T) {
		checkUdevRule(t, filepath.Join(dest, "usr/lib/udev/rules.d/99-tails-backup.rules"))
	})
}

// checkDryRun checks the commands of `make -n install`: every absolute path they name is under
// DESTDIR or the build folder, and nothing starts, enables or reloads anything.
func checkDryRun(t *testing.T, out, dest, build string) {
	t.Helper()
	abs := regexp.MustCompile(`(?:^|[\s=])("?)(/[^\s";]*)`)
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "make") {
			continue
		}
		for _, w := range []string{"systemctl", "udevadm", "daemon-reload", "loginctl", "chown"} {
			if strings.Contains(line, w) {
				t.Errorf("make install runs %s: %q", w, line)
			}
		}
		for _, m := range abs.FindAllStringSubmatch(line, -1) {
			p := m[2]
			switch {
			case p == "/dev/null":
			case p == dest || strings.HasPrefix(p, dest+"/"):
			case p == build || strings.HasPrefix(p, build+"/"):
			case strings.HasSuffix(p, "/go") && filepath.IsAbs(p) && strings.HasPrefix(line, p): // the go command
			default:
				t.Errorf("make install names %s, outside DESTDIR: %q", p, line)
			}
		}
	}
}

func checkInstalledFiles(t *testing.T, root, dest, bin string, got map[string]installEntry) {
	d := func(perm fs.FileMode) installEntry { return installEntry{kind: "d", perm: perm} }
	f := func(perm fs.FileMode) installEntry { return installEntry{kind: "f", perm: perm} }
	want := map[string]installEntry{
		"usr":                         d(0o755),
		"usr/bin":                     d(0o755),
		"usr/bin/tails-backup":        f(0o755),
		"usr/lib":                     d(0o755),
		"usr/lib/tails-backup":        d(0o755),
		"usr/lib/tails-backup/helper": {kind: "l", link: installHelperLink},
		"etc":                         d(0o755),
		"etc/sudoers.d":               d(0o750),
		"etc/sudoers.d/tails-backup":  f(0o440),
		"usr/lib/systemd":             d(0o755),
		"usr/lib/systemd/user":        d(0o755),
		"usr/lib/systemd/user/tails-backup-agent.service": f(0o644),
		"usr/share":                  d(0o755),
		"usr/share/polkit-1":         d(0o755),
		"usr/share/polkit-1/rules.d": d(0o755),
		"usr/share/polkit-1/rules.d/50-tails-backup.rules": f(0o644),
		"usr/lib/udev":         d(0o755),
		"usr/lib/udev/rules.d": d(0o755),
		"usr/lib/udev/rules.d/99-tails-backup.rules": f(0o644),
		"usr/share/doc":              d(0o755),
		"usr/share/doc/tails-backup": d(0o755),
		// The Backup app.
		"usr/bin/tails-backup-app":                             f(0o755),
		"usr/share/applications":                               d(0o755),
		"usr/share/applications/org.boum.tails.Backup.desktop": f(0o644),
		"usr/share/tails-backup":                               d(0o755),
		"usr/share/tails-backup/app":                           d(0o755),
		"usr/share/tails-backup/app/tailsbackup":               d(0o755),
		"usr/share/tails-backup/app/ui":                        d(0o755),
	}
	// Sources of the installed files that are copies.
	sources := map[string]string{
		"usr/bin/tails-backup":                             bin,
		"etc/sudoers.d/tails-backup":                       filepath.Join(root, installPkgDir, "sudoers"),
		"usr/lib/systemd/user/tails-backup-agent.service":  filepath.Join(root, installPkgDir, "tails-backup-agent.service"),
		"usr/share/polkit-1/rules.d/50-tails-backup.rules": filepath.Join(root, installPkgDir, "50-tails-backup.rules"),
		"usr/lib/udev/rules.d/99-tails-backup.rules":       filepath.Join(root, installPkgDir, "99-tails-backup.rules"),
		"usr/share/doc/tails-backup/README.md":             filepath.Join(root, "README.md"),
		"usr/share/doc/tails-backup/INSTALL.md":            filepath.Join(root, installPkgDir, "README.md"),
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range docs {
		sources["usr/share/doc/tails-backup/"+filepath.Base(p)] = p
	}
	sources["usr/bin/tails-backup-app"] = filepath.Join(root, "app", "tails-backup-app")
	sources["usr/share/applications/org.boum.tails.Backup.desktop"] = filepath.Join(root, "app", "org.boum.tails.Backup.desktop")
	for dir, pattern := range map[string]string{"tailsbackup": "*.py", "ui": "*.ui"} {
		files, err := filepath.Glob(filepath.Join(root, "app", dir, pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("app/%s/%s: %v (none)", dir, pattern, err)
		}
		for _, p := range files {
			rel := "usr/share/tails-backup/app/" + dir + "/" + filepath.Base(p)
			sources[rel] = p
			want[rel] = f(0o644)
		}
	}
	// The translations, compiled next to the binary by make (po/<lang>.po).
	catalogs, err := filepath.Glob(filepath.Join(root, "po", "*.po"))
	if err != nil || len(catalogs) == 0 {
		t.Fatalf("po/*.po: %v (none)", err)
	}
	want["usr/share/locale"] = d(0o755)
	for _, p := range catalogs {
		lang := strings.TrimSuffix(filepath.Base(p), ".po")
		want["usr/share/locale/"+lang] = d(0o755)
		want["usr/share/locale/"+lang+"/LC_MESSAGES"] = d(0o755)
		rel := "usr/share/locale/" + lang + "/LC_MESSAGES/tails-backup.mo"
		want[rel] = f(0o644)
		sources[rel] = filepath.Join(filepath.Dir(bin), "locale", lang, "LC_MESSAGES", "tails-backup.mo")
	}
	for rel := range sources {
		if strings.HasPrefix(rel, "usr/share/doc/") {
			want[rel] = f(0o644)
		}
	}
	// The documents this work promises, whatever else docs/ holds.
	for _, name := range []string{"README.md", "INSTALL.md", "architecture.md", "user-guide.md", "threat-model.md", "sync.md"} {
		if _, ok := want["usr/share/doc/tails-backup/"+name]; !ok {
			t.Errorf("%s is not installed in /usr/share/doc/tails-backup", name)
		}
	}

	for rel, w := range want {
		g, ok := got[rel]
		switch {
		case !ok:
			t.Errorf("%s is not installed", rel)
		case g.kind != w.kind || (w.kind == "l" && g.link != w.link) || (w.kind != "l" && g.perm != w.perm):
			t.Errorf("%s is %v, want %v", rel, g, w)
		}
	}
	for rel, g := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("unexpected %s (%v) in DESTDIR", rel, g)
		}
	}
	for rel, src := range sources {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[rel].data, data) {
			t.Errorf("%s differs from %s", rel, src)
		}
	}
	// The symlink leads to the installed program, inside DESTDIR.
	helperPath := filepath.Join(dest, "usr/lib/tails-backup/helper")
	resolved, err := filepath.EvalSymlinks(helperPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dest, "usr/bin/tails-backup"); resolved != want {
		t.Errorf("the helper symlink resolves to %s, want %s", resolved, want)
	}
}

// installRun runs an installed program with no standard input and returns its exit status and
// outputs.
func installRun(t *testing.T, path string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("run %s: %v", path, err)
	return 0, "", ""
}

// checkInstalledHelper: run as .../helper (the name the sudoers rule allows), the installed
// program is the root helper and refuses any argument with an error event; run as tails-backup
// without arguments, it is the command line and prints its usage.
func checkInstalledHelper(t *testing.T, dest string) {
	helperPath := filepath.Join(dest, "usr/lib/tails-backup/helper")
	for _, args := range [][]string{{"update"}, {""}, {"--help"}, {"agent"}, {"sync", "/", "/tmp"}} {
		code, stdout, stderr := installRun(t, helperPath, args...)
		if code != 1 {
			t.Errorf("helper %q: exit %d, want 1 (stderr %q)", args, code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if len(lines) != 1 {
			t.Errorf("helper %q: stdout %q, want one event", args, stdout)
			continue
		}
		var ev wire.Event
		dec := json.NewDecoder(strings.NewReader(lines[0]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Errorf("helper %q: event %q: %v", args, lines[0], err)
			continue
		}
		if ev.Event != wire.EventError || ev.Code != wire.CodeInvalidRequest || !strings.Contains(ev.Message, "takes no arguments") {
			t.Errorf("helper %q: event %+v", args, ev)
		}
		if !strings.Contains(stderr, "takes no arguments") {
			t.Errorf("helper %q: stderr %q", args, stderr)
		}
	}
	code, stdout, _ := installRun(t, filepath.Join(dest, "usr/bin/tails-backup"))
	if code != 2 || !strings.Contains(stdout, "usage: tails-backup") {
		t.Errorf("tails-backup without arguments: exit %d, stdout %q; want the usage", code, stdout)
	}
}

// installLines returns the lines of path that are neither blank nor comments (prefix).
func installLines(t *testing.T, path, comment string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, comment) {
			out = append(out, l)
		}
	}
	return out
}

func checkSudoers(t *testing.T, path string) {
	if got := installLines(t, path, "#"); !slices.Equal(got, installSudoersRule) {
		t.Errorf("sudoers rules:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), strings.Join(installSudoersRule, "\n"))
	}
	t.Run("visudo", func(t *testing.T) {
		visudo := testtool.Program(t, "visudo", "sudo", "/usr/sbin/visudo") // checks the sudoers file's syntax
		out, err := exec.Command(visudo, "-c", "-f", path).CombinedOutput()
		if err != nil {
			t.Errorf("visudo -c -f %s: %v\n%s", path, err, out)
		}
	})
}

// installUnitKeys parses a unit file into section -> key -> values.
func installUnitKeys(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	out := make(map[string]map[string][]string)
	section := ""
	for _, l := range installLines(t, path, "#") {
		if strings.HasPrefix(l, ";") {
			continue
		}
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			section = l[1 : len(l)-1]
			out[section] = make(map[string][]string)
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || section == "" {
			t.Fatalf("%s: malformed line %q", path, l)
		}
		out[section][strings.TrimSpace(k)] = append(out[section][strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return out
}

func checkUserUnit(t *testing.T, path, installedBin string) {
	u := installUnitKeys(t, path)
	one := func(section, key, want string) {
		t.Helper()
		if got := u[section][key]; len(got) != 1 || got[0] != want {
			t.Errorf("[%s] %s=%q, want %q", section, key, got, want)
		}
	}
	one("Service", "ExecStart", "/usr/bin/tails-backup agent")
	one("Service", "Restart", "on-failure")
	one("Unit", "PartOf", "graphical-session.target")
	one("Unit", "After", "graphical-session.target")
	one("Install", "WantedBy", "graphical-session.target")
	if rs := u["Service"]["RestartSec"]; len(rs) != 1 {
		t.Errorf("RestartSec=%q, want one value", rs)
	} else if d, err := time.ParseDuration(rs[0]); err != nil || d < time.Second || d > time.Minute {
		t.Errorf("RestartSec=%s, want between 1s and 1min", rs[0])
	}
	for section, keys := range u {
		for k, vs := range keys {
			if strings.Contains(k, "Environment") || k == "NoNewPrivileges" || k == "User" {
				t.Errorf("[%s] %s=%q: the unit sets no environment, no user and no NoNewPrivileges (sudo must work)", section, k, vs)
			}
			for _, v := range vs {
				if strings.Contains(v, "network") {
					t.Errorf("[%s] %s=%s: the agent uses no network", section, k, v)
				}
			}
		}
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		sa := testtool.Program(t, "systemd-analyze", "systemd") // verifies the unit
		// verify checks that ExecStart's program exists: point it at the installed one.
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		unit := filepath.Join(dir, filepath.Base(path))
		data = bytes.ReplaceAll(data, []byte("ExecStart=/usr/bin/tails-backup "), []byte("ExecStart="+installedBin+" "))
		if err := os.WriteFile(unit, data, 0o644); err != nil {
			t.Fatal(err)
		}
		runtime := filepath.Join(dir, "runtime") // --user needs a runtime directory, even offline
		if err := os.Mkdir(runtime, 0o700); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sa, "--user", "verify", unit)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, "SYSTEMD_LOG_LEVEL=notice")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), filepath.Base(path)) {
			t.Errorf("systemd-analyze --user verify: %v\n%s", err, out)
		}
	})
}

// polkitCase is one authorization question to the polkit rule.
type polkitCase struct {
	ID      string            `json:"id"`
	User    string            `json:"user"`
	Local   bool              `json:"local"`
	Active  bool              `json:"active"`
	Details map[string]string `json:"details"`
	Want    string            `json:"-"` // "yes" or "not-handled"
}

// polkitDriver loads a rules file the way polkitd does (polkit.addRule) in a context without
// anything else, and answers each case: the first rule's result that is not NOT_HANDLED.
const polkitDriver = `
const fs = require("fs"), vm = require("vm");
const [file, casesJSON] = process.argv.slice(2);
const rules = [];
const polkit = {
  Result: {NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
           AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null},
  addRule: (f) => rules.push(f),
  addAdminRule: () => {},
  log: () => {},
  spawn: () => { throw new Error("the rule must not spawn programs"); },
};
vm.runInNewContext(fs.readFileSync(file, "utf8"), {polkit}, {filename: file});
const out = JSON.parse(casesJSON).map((c) => {
  const action = {id: c.id, lookup: (k) => c.details[k]};
  const subject = {user: c.user, local: c.local, active: c.active, pid: 4242, seat: "seat0",
                   session: "2", groups: [c.user], isInGroup: () => false, isInNetGroup: () => false};
  for (const r of rules) {
    const res = r(action, subject);
    if (res !== null && res !== undefined) return res;
  }
  return "not-handled";
});
process.stdout.write(JSON.stringify(out));
`

func checkPolkitRule(t *testing.T, path string) {
	// polkitd's JavaScript engine (Duktape since polkit 121) is ECMAScript 5.1.
	for _, l := range installLines(t, path, "//") {
		for _, es6 := range []string{"=>", "let ", "const ", "`", "class "} {
			if strings.Contains(l, es6) {
				t.Errorf("the polkit rule uses %q, which is not ECMAScript 5.1: %q", es6, l)
			}
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		node = testtool.Program(t, "nodejs", "nodejs") // checks the polkit rule's decisions
	}
	const udisks = "org.freedesktop.udisks2."
	removable := map[string]string{"drive.removable": "true", "drive.removable.bus": "usb", "id.type": "crypto_LUKS", "partition.name": "TailsData"}
	fixed := map[string]string{"id.type": "crypto_LUKS", "partition.name": "TailsData"}
	tailsData := map[string]string{"id.type": "ext4", "id.label": "TailsData"}
	cases := []polkitCase{
		{ID: udisks + "encrypted-unlock", User: "amnesia", Local: true, Active: true, Details: removable, Want: "yes"},
		{ID: udisks + "filesystem-mount", User: "amnesia", Local: true, Active: true, Details: tailsData, Want: "yes"},
		{ID: udisks + "power-off-drive", User: "amnesia", Local: true, Active: true, Details: map[string]string{"drive.removable": "true"}, Want: "yes"},
		// Only amnesia, only in its active local session.
		{ID: udisks + "encrypted-unlock", User: "mallory", Local: true, Active: true, Details: removable, Want: "not-handled"},
		{ID: udisks + "encrypted-unlock", User: "amnesia", Local: true, Active: false, Details: removable, Want: "not-handled"},
		{ID: udisks + "encrypted-unlock", User: "amnesia", Local: false, Active: true, Details: removable, Want: "not-handled"},
		// Only removable drives, only the TailsData ext4 file system.
		{ID: udisks + "encrypted-unlock", User: "amnesia", Local: true, Active: true, Details: fixed, Want: "not-handled"},
		{ID: udisks + "power-off-drive", User: "amnesia", Local: true, Active: true, Details: map[string]string{}, Want: "not-handled"},
		{ID: udisks + "filesystem-mount", User: "amnesia", Local: true, Active: true, Details: map[string]string{"id.type": "vfat", "id.label": "TailsData"}, Want: "not-handled"},
		{ID: udisks + "filesystem-mount", User: "amnesia", Local: true, Active: true, Details: map[string]string{"id.type": "ext4", "id.label": "Backup"}, Want: "not-handled"},
		// Nothing else.
		{ID: udisks + "encrypted-unlock-system", User: "amnesia", Local: true, Active: true, Details: removable, Want: "not-handled"},
		{ID: udisks + "filesystem-mount-system", User: "amnesia", Local: true, Active: true, Details: tailsData, Want: "not-handled"},
		{ID: udisks + "filesystem-mount-other-seat", User: "amnesia", Local: true, Active: true, Details: tailsData, Want: "not-handled"},
		{ID: udisks + "filesystem-unmount-others", User: "amnesia", Local: true, Active: true, Details: tailsData, Want: "not-handled"},
		{ID: udisks + "encrypted-lock-others", User: "amnesia", Local: true, Active: true, Details: removable, Want: "not-handled"},
		{ID: udisks + "power-off-drive-system", User: "amnesia", Local: true, Active: true, Details: removable, Want: "not-handled"},
		{ID: udisks + "modify-device", User: "amnesia", Local: true, Active: true, Details: removable, Want: "not-handled"},
		{ID: udisks + "loop-setup", User: "amnesia", Local: true, Active: true, Details: map[string]string{}, Want: "not-handled"},
		{ID: "org.freedesktop.login1.power-off", User: "amnesia", Local: true, Active: true, Details: map[string]string{}, Want: "not-handled"},
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "-", path, string(in))
	cmd.Stdin = strings.NewReader(polkitDriver)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("node answered %q (%v)", out, err)
	}
	for i, c := range cases {
		if got[i] != c.Want {
			t.Errorf("%s for %s (local %v, active %v, %v): %s, want %s", c.ID, c.User, c.Local, c.Active, c.Details, got[i], c.Want)
		}
	}
}

// installUdevItem is one KEY{attr}OP"value" of a udev rule.
var installUdevItem = regexp.MustCompile(`^[A-Z_]+(\{[^{}"]+\})?(==|!=|\+=|-=|:=|=)"[^"]*"$`)

func checkUdevRule(t *testing.T, path string) {
	var rules []string
	for _, l := range installLines(t, path, "#") {
		for _, item := range strings.Split(l, ", ") {
			if !installUdevItem.MatchString(item) {
				t.Errorf("udev rule %q: %q is not KEY==\"value\" nor KEY=\"value\"", l, item)
			}
		}
		rules = append(rules, l)
	}
	for _, want := range []string{
		`SUBSYSTEM!="block", GOTO="tails_backup_end"`,
		`ENV{ID_PART_ENTRY_NAME}=="TailsData", ENV{UDISKS_AUTO}="0"`,
		`ENV{ID_PART_ENTRY_TYPE}=="8da63339-0007-60c0-c436-083ac8230908", ENV{UDISKS_AUTO}="0"`,
		`ENV{ID_FS_LABEL}=="TailsData", ENV{UDISKS_AUTO}="0"`,
		`LABEL="tails_backup_end"`,
	} {
		if !slices.Contains(rules, want) {
			t.Errorf("the udev rules lack %s", want)
		}
	}
	if rules[len(rules)-1] != `LABEL="tails_backup_end"` {
		t.Errorf("the udev rules do not end with their label: %q", rules[len(rules)-1])
	}
}

// checkMenuEntry checks the app's menu entry: it sits where Tails puts its own tools (categories
// System and Tails, as Tails' Persistent Storage and its "Back Up Persistent Storage"), in no
// other submenu (Utility would make a second entry, in Accessories), opens the app without a
// terminal, and is not Tails' own entry's file (tails-backup.desktop, which the package moves
// aside: cmd/tails-backup/install/README.md).
func checkMenuEntry(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			keys[k] = v
		}
	}
	cats := strings.Split(strings.TrimSuffix(keys["Categories"], ";"), ";")
	slices.Sort(cats)
	if want := []string{"GTK", "System", "Tails"}; !slices.Equal(cats, want) {
		t.Errorf("Categories %v, want %v", cats, want)
	}
	for k, want := range map[string]string{"Type": "Application", "Exec": "tails-backup-app", "Terminal": "false", "Name": "Backup"} {
		if keys[k] != want {
			t.Errorf("%s=%q, want %q", k, keys[k], want)
		}
	}
	if filepath.Base(file) == "tails-backup.desktop" {
		t.Errorf("the menu entry has the file name of Tails' own entry")
	}
	if v, err := exec.LookPath("desktop-file-validate"); err == nil {
		// Tails is no registered category: the one complaint allowed.
		out, _ := exec.Command(v, file).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.Contains(line, "Tails") {
				t.Errorf("desktop-file-validate: %s", line)
			}
		}
	}
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tails-backup/internal/testtool"
)

// The Debian packages (debian/, .ci/deb, `make deb`): built here with debhelper and
// dpkg-buildpackage, checked by lintian (make deb fails on any lintian error or warning that
// debian/*.lintian-overrides does not explain), and compared with `make install DESTDIR=...`: the
// packages must hold every path that make install installs, with the same type, mode, owner,
// symlink target and content, and nothing else but what debhelper adds (copyright, changelog,
// lintian overrides).

// debEntry is one path of a package, as `dpkg-deb -c` lists it, or of the make install tree.
type debEntry struct {
	kind  string // "d", "f" or "l"
	perm  fs.FileMode
	owner string // user/group
	link  string // symlink target
	pkg   string // the package that holds it (empty for the make install tree)
}

func (e debEntry) String() string {
	if e.kind == "l" {
		return fmt.Sprintf("symlink to %s, %s", e.link, e.owner)
	}
	return fmt.Sprintf("%s %04o %s", e.kind, e.perm, e.owner)
}

// debPackages are the binary packages of debian/control and what each must hold of make
// install's files: the polkit and udev rules go to tails-backup-debian-extras only (Tails has
// its own rules; the package description says so), everything else to tails-backup.
var debPackages = []struct {
	name, arch string
	holds      func(rel string) bool
}{
	{"tails-backup", "amd64", func(rel string) bool { return !debExtrasPath(rel) }},
	{"tails-backup-debian-extras", "all", debExtrasPath},
}

func debExtrasPath(rel string) bool {
	return strings.HasPrefix(rel, "usr/share/polkit-1/") || strings.HasPrefix(rel, "usr/lib/udev/")
}

// debAdded are the paths that debhelper adds to the packages and make install does not write.
var debAdded = map[string]debEntry{
	"usr/share/doc/tails-backup/copyright":                  {kind: "f", perm: 0o644, owner: "root/root", pkg: "tails-backup"},
	"usr/share/doc/tails-backup/changelog.gz":               {kind: "f", perm: 0o644, owner: "root/root", pkg: "tails-backup"},
	"usr/share/lintian":                                     {kind: "d", perm: 0o755, owner: "root/root", pkg: "tails-backup"},
	"usr/share/lintian/overrides":                           {kind: "d", perm: 0o755, owner: "root/root", pkg: "tails-backup"},
	"usr/share/lintian/overrides/tails-backup":              {kind: "f", perm: 0o644, owner: "root/root", pkg: "tails-backup"},
	"usr/share/doc/tails-backup-debian-extras":              {kind: "d", perm: 0o755, owner: "root/root", pkg: "tails-backup-debian-extras"},
	"usr/share/doc/tails-backup-debian-extras/copyright":    {kind: "f", perm: 0o644, owner: "root/root", pkg: "tails-backup-debian-extras"},
	"usr/share/doc/tails-backup-debian-extras/changelog.gz": {kind: "f", perm: 0o644, owner: "root/root", pkg: "tails-backup-debian-extras"},
}

// debListLine is one line of `dpkg-deb -c`:
// "-rw-r--r-- root/root      1131 2026-12-05 07:14 ./usr/lib/udev/rules.d/99-tails-backup.rules".
var debListLine = regexp.MustCompile(`^([-dl])([-rwx]{9})\s+(\S+/\S+)\s+\d+\s+\S+\s+\S+\s+\./(.*)$`)

// parseDebList parses the output of `dpkg-deb -c` into paths relative to the root, without the
// root itself.
func parseDebList(out, pkg string) (map[string]debEntry, error) {
	entries := make(map[string]debEntry)
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		m := debListLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unexpected dpkg-deb -c line %q (a mode with s, t or another file type?)", line)
		}
		e := debEntry{owner: m[3], pkg: pkg}
		for i, c := range m[2] {
			if c != '-' {
				e.perm |= 1 << (8 - i)
			}
		}
		rel := m[4]
		switch m[1] {
		case "d":
			e.kind = "d"
			rel = strings.TrimSuffix(rel, "/")
		case "l":
			e.kind, e.perm = "l", 0
			var ok bool
			if rel, e.link, ok = strings.Cut(rel, " -> "); !ok {
				return nil, fmt.Errorf("symlink without a target in %q", line)
			}
		default:
			e.kind = "f"
		}
		if rel == "" {
			continue // the root, ./
		}
		if _, dup := entries[rel]; dup {
			return nil, fmt.Errorf("%s listed twice", rel)
		}
		entries[rel] = e
	}
	return entries, nil
}

// compareDebInstall returns what differs between make install's tree and the packages: a path of
// one missing from the other (but for the debhelper additions in added), or one with another
// type, mode, owner or symlink target. A folder may be in both packages, not a file.
func compareDebInstall(install, deb, added map[string]debEntry) []string {
	var diffs []string
	for rel, want := range install {
		got, ok := deb[rel]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s (%v) is installed by make install and is in no package", rel, want))
		case got.kind != want.kind || got.perm != want.perm || got.owner != want.owner || got.link != want.link:
			diffs = append(diffs, fmt.Sprintf("%s is %v in package %s, %v from make install", rel, got, got.pkg, want))
		}
	}
	for rel, got := range deb {
		if _, ok := install[rel]; ok {
			continue
		}
		want, ok := added[rel]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s (%v) is in package %s and make install does not install it", rel, got, got.pkg))
		case got.kind != want.kind || got.perm != want.perm || got.owner != want.owner || got.pkg != want.pkg:
			diffs = append(diffs, fmt.Sprintf("%s is %v in package %s, want %v in %s", rel, got, got.pkg, want, want.pkg))
		}
	}
	slices.Sort(diffs)
	return diffs
}

func TestCompareDebInstall(t *testing.T) {
	f := debEntry{kind: "f", perm: 0o644, owner: "root/root"}
	inPkg := func(e debEntry, pkg string) debEntry { e.pkg = pkg; return e }
	with := func(e debEntry, change func(*debEntry)) debEntry { change(&e); return e }
	link := debEntry{kind: "l", owner: "root/root", link: "../../bin/tails-backup"}
	added := map[string]debEntry{"usr/share/doc/p/copyright": inPkg(f, "p")}
	tests := []struct {
		name         string
		install, deb map[string]debEntry
		want         []string // substrings of the differences, in order
	}{
		{"same", map[string]debEntry{"a": f, "l": link},
			map[string]debEntry{"a": inPkg(f, "p"), "l": inPkg(link, "p"), "usr/share/doc/p/copyright": inPkg(f, "p")}, nil},
		{"missing from the packages", map[string]debEntry{"a": f, "b": f},
			map[string]debEntry{"a": inPkg(f, "p")}, []string{"b (f 0644 root/root) is installed by make install and is in no package"}},
		{"only in a package", map[string]debEntry{"a": f},
			map[string]debEntry{"a": inPkg(f, "p"), "x": inPkg(f, "p")}, []string{"x (f 0644 root/root) is in package p and make install does not install it"}},
		{"other mode", map[string]debEntry{"a": f},
			map[string]debEntry{"a": inPkg(with(f, func(e *debEntry) { e.perm = 0o600 }), "p")}, []string{"a is f 0600 root/root in package p, f 0644 root/root from make install"}},
		{"other owner", map[string]debEntry{"a": f},
			map[string]debEntry{"a": inPkg(with(f, func(e *debEntry) { e.owner = "root/adm" }), "p")}, []string{"a is f 0644 root/adm in package p"}},
		{"other link", map[string]debEntry{"l": link},
			map[string]debEntry{"l": inPkg(with(link, func(e *debEntry) { e.link = "/usr/bin/tails-backup" }), "p")}, []string{"l is symlink to /usr/bin/tails-backup"}},
		{"file made a folder", map[string]debEntry{"a": f},
			map[string]debEntry{"a": inPkg(with(f, func(e *debEntry) { e.kind = "d" }), "p")}, []string{"a is d 0644"}},
		{"debhelper file in the wrong package", map[string]debEntry{},
			map[string]debEntry{"usr/share/doc/p/copyright": inPkg(f, "q")}, []string{"usr/share/doc/p/copyright is f 0644 root/root in package q, want f 0644 root/root in p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := compareDebInstall(tc.install, tc.deb, added)
			if len(got) != len(tc.want) {
				t.Fatalf("differences %q, want %d like %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("difference %q, want it to contain %q", got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseDebList(t *testing.T) {
	out := `drwxr-xr-x root/root         0 2026-12-05 07:14 ./
drwxr-x--- root/root         0 2026-12-05 07:14 ./etc/sudoers.d/
-r--r----- root/root      1010 2026-12-05 07:14 ./etc/sudoers.d/tails-backup
lrwxrwxrwx root/root         0 2026-12-05 07:14 ./usr/lib/tails-backup/helper -> ../../bin/tails-backup
`
	got, err := parseDebList(out, "p")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]debEntry{
		"etc/sudoers.d":               {kind: "d", perm: 0o750, owner: "root/root", pkg: "p"},
		"etc/sudoers.d/tails-backup":  {kind: "f", perm: 0o440, owner: "root/root", pkg: "p"},
		"usr/lib/tails-backup/helper": {kind: "l", owner: "root/root", link: "../../bin/tails-backup", pkg: "p"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parsed %v, want %v", got, want)
	}
	for _, bad := range []string{
		"-rwsr-xr-x root/root 0 2026-12-05 07:14 ./usr/bin/x", // set-uid: not expected in our packages
		"lrwxrwxrwx root/root 0 2026-12-05 07:14 ./usr/x",     // no target
		"garbage",
	} {
		if _, err := parseDebList(bad+"\n", "p"); err == nil {
			t.Errorf("parseDebList(%q) accepted it", bad)
		}
	}
}

// installOwners lists make install's tree as debEntry values, with owners by name.
func installOwners(t *testing.T, dest string, snap map[string]installEntry) map[string]debEntry {
	t.Helper()
	out := make(map[string]debEntry, len(snap))
	for rel, e := range snap {
		fi, err := os.Lstat(filepath.Join(dest, rel))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10))
		if err != nil {
			t.Fatalf("owner of %s: %v", rel, err)
		}
		g, err := user.LookupGroupId(strconv.FormatUint(uint64(st.Gid), 10))
		if err != nil {
			t.Fatalf("group of %s: %v", rel, err)
		}
		d := debEntry{kind: e.kind, perm: e.perm, owner: u.Username + "/" + g.Name, link: e.link}
		if e.kind == "l" {
			d.perm = 0
		}
		out[rel] = d
	}
	return out
}

func TestDeb(t *testing.T) {
	testtool.Program(t, "dpkg-deb", "dpkg") // without it, this is not a Debian system: no package to build
	if os.Geteuid() != 0 {
		t.Skip("needs root: make deb installs its build dependencies with apt-get, and the owners of make install's files are compared with the packages' root/root")
	}
	root := installRepoRoot(t)
	makePath, goPath := installTools(t)
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")

	start := time.Now()
	out, err := installMake(t, root, makePath, "deb", "DISTDIR="+dist)
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	t.Logf("make deb took %v", time.Since(start).Round(time.Second))
	// make deb stops on any lintian error or warning; say so only if lintian did run.
	if !strings.Contains(out, "lintian: no error, no warning") {
		t.Fatalf("make deb succeeded without lintian's verdict:\n%s", out)
	}

	dest := filepath.Join(tmp, "dest")
	bin := filepath.Join(tmp, "build", "tails-backup")
	if out, err := installMake(t, root, makePath, "install", "DESTDIR="+dest, "BIN="+bin, "GO="+goPath); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	snap := installSnapshot(t, dest)
	install := installOwners(t, dest, snap)

	count, err := exec.Command("git", "-C", root, "rev-list", "--count", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-list --count HEAD: %v", err)
	}
	version := "0." + strings.TrimSpace(string(count))

	deb := make(map[string]debEntry)
	extracted := make(map[string]string) // package -> folder it is extracted to
	for _, p := range debPackages {
		file := filepath.Join(dist, fmt.Sprintf("%s_%s_%s.deb", p.name, version, p.arch))
		fields, err := exec.Command("dpkg-deb", "-f", file, "Package", "Version", "Architecture").Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", file, err)
		}
		if want := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\n", p.name, version, p.arch); string(fields) != want {
			t.Errorf("%s: control fields\n%s want\n%s", file, fields, want)
		}
		list, err := exec.Command("dpkg-deb", "-c", file).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -c %s: %v", file, err)
		}
		entries, err := parseDebList(string(list), p.name)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for rel, e := range entries {
			if e.kind != "d" && install[rel].kind != "" && !p.holds(rel) {
				t.Errorf("%s is in %s: it belongs to the other package", rel, p.name)
			}
			if prev, ok := deb[rel]; ok {
				if e.kind != "d" || prev.String() != e.String() {
					t.Errorf("%s is in both packages: %v in %s, %v in %s", rel, prev, prev.pkg, e, e.pkg)
				}
				continue
			}
			deb[rel] = e
		}
		x := filepath.Join(tmp, "x-"+p.name)
		if out, err := exec.Command("dpkg-deb", "-x", file, x).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", file, err, out)
		}
		extracted[p.name] = x
	}

	for _, d := range compareDebInstall(install, deb, debAdded) {
		t.Error(d)
	}

	// The same content: every file but the program, which debian/rules builds with other flags
	// (a hardened PIE); that one must run and answer as make install's does.
	for rel, e := range snap {
		got, ok := deb[rel]
		if e.kind != "f" || !ok {
			continue
		}
		p := filepath.Join(extracted[got.pkg], rel)
		if rel == "usr/bin/tails-backup" {
			want, errW := exec.Command(filepath.Join(dest, rel), "help").CombinedOutput()
			have, errH := exec.Command(p, "help").CombinedOutput()
			if errW != nil || errH != nil || !bytes.Equal(have, want) || !bytes.Contains(have, []byte("usage: tails-backup")) {
				t.Errorf("the packaged program's help differs from make install's:\n%s (%v)\nwant\n%s (%v)", have, errH, want, errW)
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, e.data) {
			t.Errorf("%s differs between %s and make install", rel, got.pkg)
		}
	}

	// The maintainer scripts and conffiles: the agent's user unit enabled for every user by the
	// postinst (dh_installsystemduser: deb-systemd-helper --user, links under /etc/systemd/user)
	// and started in the running desktop sessions (debian/tails-backup.postinst), stopped on
	// removal; the sudoers rule a conffile (an administrator's change to it is kept on upgrade).
	// lintian, run by make deb, has checked their shell syntax.
	tb := filepath.Join(dist, fmt.Sprintf("tails-backup_%s_amd64.deb", version))
	for _, c := range []struct{ member, want string }{
		{"postinst", "deb-systemd-helper --user enable 'tails-backup-agent.service'"},
		{"postinst", "in_sessions restart"}, // and started in the desktop sessions already running
		{"prerm", "deb-systemd-invoke --user stop tails-backup-agent.service"},
		{"postrm", "deb-systemd-helper --user purge 'tails-backup-agent.service'"},
		{"conffiles", "/etc/sudoers.d/tails-backup"},
	} {
		got, err := exec.Command("dpkg-deb", "-I", tb, c.member).Output()
		if err != nil {
			t.Errorf("dpkg-deb -I %s %s: %v", tb, c.member, err)
			continue
		}
		if !strings.Contains(string(got), c.want) {
			t.Errorf("%s of tails-backup has no %q:\n%s", c.member, c.want, got)
		}
	}
	fields, err := exec.Command("dpkg-deb", "-f", tb, "Depends").Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s Depends: %v", tb, err)
	}
	for _, dep := range []string{"sudo", "udisks2", "pinentry-gnome3", "libc6"} {
		if !regexp.MustCompile(`(^|, )` + regexp.QuoteMeta(dep) + `( |,|$)`).Match(bytes.TrimSpace(fields)) {
			t.Errorf("tails-backup does not depend on %s: %s", dep, fields)
		}
	}

	var files []string
	for _, p := range debPackages {
		files = append(files, filepath.Join(dist, fmt.Sprintf("%s_%s_%s.deb", p.name, version, p.arch)))
	}
	t.Run("InstallAndPurgeInThrowawayRoot", func(t *testing.T) {
		checkDebThrowawayRoot(t, filepath.Join(tmp, "root"), files, snap)
	})
}

// checkDebThrowawayRoot installs the packages with dpkg into an empty root (dpkg --root, its own
// database there), checks that make install's files are there as make install makes them and that
// the sudoers rule is a conffile, then purges both packages and checks that none of their files
// is left. The maintainer scripts run on this machine (--force-script-chrootless: the root has no
// shell to chroot into) with DPKG_ROOT set, which both debhelper's parts and ours honour by doing
// nothing: no unit is enabled or started here. Dependencies are not installed (--force-depends).
func checkDebThrowawayRoot(t *testing.T, root string, debs []string, snap map[string]installEntry) {
	admin := filepath.Join(root, "var/lib/dpkg")
	for _, d := range []string{"info", "updates"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) string {
		t.Helper()
		all := append([]string{"--root=" + root, "--log=" + filepath.Join(root, "dpkg.log"),
			"--force-script-chrootless", "--force-depends"}, args...)
		out, err := exec.Command("dpkg", all...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(all, " "), err, out)
		}
		return string(out)
	}
	// Tails' own backup tool, files of the Tails image that no package owns: the postinst moves
	// them aside (dpkg-divert) and the postrm puts them back.
	tailsOwn := map[string]string{
		"usr/local/bin/tails-backup":                  "#!/bin/bash\n# Tails' script\n",
		"usr/share/applications/tails-backup.desktop": "[Desktop Entry]\nName=Back Up Persistent Storage\n",
	}
	for rel, data := range tailsOwn {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, rel), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dpkg(append([]string{"-i"}, debs...)...)
	for rel, data := range tailsOwn {
		if _, err := os.Lstat(filepath.Join(root, rel)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Tails' %s is still in place after dpkg -i (%v): `tails-backup` or the menu would be Tails' own tool", rel, err)
		}
		if got, err := os.ReadFile(filepath.Join(root, rel+".tails")); err != nil || string(got) != data {
			t.Errorf("Tails' %s moved aside: %q, %v", rel, got, err)
		}
	}
	for rel, want := range snap {
		fi, err := os.Lstat(filepath.Join(root, rel))
		if err != nil {
			t.Errorf("installed with dpkg: %v", err)
			continue
		}
		got := installEntry{perm: fi.Mode().Perm()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			got.kind = "l"
			got.link, _ = os.Readlink(filepath.Join(root, rel))
		case fi.IsDir():
			got.kind = "d"
		default:
			got.kind = "f"
		}
		if got.String() != want.String() {
			t.Errorf("%s installed by dpkg is %v, %v from make install", rel, got, want)
		}
	}
	conffiles, err := exec.Command("dpkg-query", "--admindir="+admin, "-W", "-f=${Conffiles}", "tails-backup").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	if !strings.Contains(string(conffiles), "/etc/sudoers.d/tails-backup ") {
		t.Errorf("the sudoers rule is not a conffile: %q", conffiles)
	}

	dpkg("--purge", "tails-backup-debian-extras", "tails-backup")
	for rel, data := range tailsOwn {
		if got, err := os.ReadFile(filepath.Join(root, rel)); err != nil || string(got) != data {
			t.Errorf("Tails' %s after dpkg --purge: %q, %v; want it back", rel, got, err)
		}
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case tailsOwn[rel] != "" || (d.IsDir() && slices.ContainsFunc(slices.Collect(maps.Keys(tailsOwn)), func(f string) bool { return strings.HasPrefix(f, rel+"/") })):
			// Tails' own files, back, and their folders.
		case rel == "dpkg.log" || rel == "var/lib/dpkg" || strings.HasPrefix(rel, "var/lib/dpkg/"):
			if d.IsDir() && rel == "var/lib/dpkg" {
				return fs.SkipDir
			}
		case !d.IsDir():
			t.Errorf("%s is left after dpkg --purge", rel)
		case rel != "." && rel != "var" && rel != "var/lib":
			t.Errorf("folder %s is left after dpkg --purge", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// debFakeRunuser stands for runuser in TestDebPostinstSessions: it logs its arguments and answers
// as `systemctl --user` of the user would, from files in $STATE: USER.graphical (the desktop
// session is up), USER.enabled (the agent's unit is enabled).
const debFakeRunuser = `#!/bin/sh
echo "runuser $*" >> "$LOG"
[ "$1" = -u ] || exit 2
user=$2; shift 2
[ "$1" = -- ] || exit 2
shift
while [ "$1" = env ] || [ "${1#*=}" != "$1" ]; do shift; done
[ "$1" = systemctl ] && [ "$2" = --user ] || exit 2
shift 2
case "$*" in
  "--quiet is-active graphical-session.target") [ -e "$STATE/$user.graphical" ] ;;
  "--quiet is-enabled tails-backup-agent.service") [ -e "$STATE/$user.enabled" ] ;;
  daemon-reload|"--no-block restart tails-backup-agent.service") exit 0 ;;
  *) exit 2 ;;
esac
`

// debFakeGetent answers `getent passwd UID` for uids 1000 (amnesia) and 1001 (bob).
const debFakeGetent = `#!/bin/sh
case "$1 $2" in
  "passwd 1000") echo "amnesia:x:1000:1000::/home/amnesia:/bin/bash" ;;
  "passwd 1001") echo "bob:x:1001:1001::/home/bob:/bin/bash" ;;
  *) exit 2 ;;
esac
`

// debFakeDivert stands for dpkg-divert in TestDebPostinstSessions: it logs its call.
const debFakeDivert = `#!/bin/sh
echo "dpkg-divert $*" >>"$LOG"
`

// TestDebPostinstSessions runs debian/tails-backup.postinst (without debhelper's part, which is
// a comment line in the source file) in a mount namespace whose /run is a test folder with
// user buses, runuser and getent faked: the agent is started in the desktop sessions that are
// open and where its unit is enabled, and nowhere else; nothing at all without systemd or under
// DPKG_ROOT.
func TestDebPostinstSessions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the postinst runs in a mount namespace with a /run of the test")
	}
	unshare := testtool.Program(t, "unshare", "util-linux")
	root := installRepoRoot(t)
	postinst := filepath.Join(root, "debian", "tails-backup.postinst")
	restart := func(user, uid string) string {
		return fmt.Sprintf("runuser -u %s -- env XDG_RUNTIME_DIR=/run/user/%s DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%s/bus systemctl --user --no-block restart tails-backup-agent.service", user, uid, uid)
	}
	reload := func(user, uid string) string {
		return fmt.Sprintf("runuser -u %s -- env XDG_RUNTIME_DIR=/run/user/%s DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%s/bus systemctl --user daemon-reload", user, uid, uid)
	}
	tests := []struct {
		name    string
		args    []string
		env     []string
		systemd bool
		state   []string // files in $STATE
		want    []string // runuser calls that start or reload (is-active, is-enabled not listed)
	}{
		{"desktop open and enabled", []string{"configure", ""}, nil, true,
			[]string{"amnesia.graphical", "amnesia.enabled"}, []string{reload("amnesia", "1000"), restart("amnesia", "1000")}},
		{"upgrade restarts it", []string{"configure", "0.90"}, nil, true,
			[]string{"amnesia.graphical", "amnesia.enabled"}, []string{reload("amnesia", "1000"), restart("amnesia", "1000")}},
		{"two users, one masked", []string{"configure", ""}, nil, true,
			[]string{"amnesia.graphical", "amnesia.enabled", "bob.graphical"}, []string{reload("amnesia", "1000"), restart("amnesia", "1000"), reload("bob", "1001")}},
		{"no desktop session", []string{"configure", ""}, nil, true,
			[]string{"amnesia.enabled", "bob.enabled"}, nil},
		{"no systemd", []string{"configure", ""}, nil, false,
			[]string{"amnesia.graphical", "amnesia.enabled"}, nil},
		{"DPKG_ROOT", []string{"configure", ""}, []string{"DPKG_ROOT=/somewhere"}, true,
			[]string{"amnesia.graphical", "amnesia.enabled"}, nil},
		{"abort-upgrade", []string{"abort-upgrade", "0.99"}, nil, true,
			[]string{"amnesia.graphical", "amnesia.enabled"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			bin, state, run := filepath.Join(tmp, "bin"), filepath.Join(tmp, "state"), filepath.Join(tmp, "run")
			log := filepath.Join(tmp, "log")
			for _, d := range []string{bin, state, filepath.Join(run, "user", "1000"), filepath.Join(run, "user", "1001"), filepath.Join(run, "user", "1002")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.systemd {
				if err := os.MkdirAll(filepath.Join(run, "systemd", "system"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// Buses of uids 1000 and 1001; 1002 has a runtime folder and no bus (no user manager).
			for _, uid := range []string{"1000", "1001"} {
				l, err := net.Listen("unix", filepath.Join(run, "user", uid, "bus"))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
			}
			// dpkg-divert too: the diversions are TestDeb's (a throwaway root), and the real
			// one here would divert files of this machine.
			for name, script := range map[string]string{"runuser": debFakeRunuser, "getent": debFakeGetent, "dpkg-divert": debFakeDivert} {
				if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.state {
				if err := os.WriteFile(filepath.Join(state, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(unshare, "-m", "sh", "-c", `mount --bind "$RUN" /run && exec sh "$@"`, "sh", postinst)
			cmd.Args = append(cmd.Args, tc.args...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LOG="+log, "STATE="+state, "RUN="+run)
			cmd.Env = append(cmd.Env, tc.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("postinst %v: %v\n%s", tc.args, err, out)
			}
			data, err := os.ReadFile(log)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if strings.Contains(line, "daemon-reload") || strings.Contains(line, "restart") {
					got = append(got, line)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("postinst %v started or reloaded:\n%s\nwant\n%s\n(all calls:\n%s)", tc.args, strings.Join(got, "\n"), strings.Join(tc.want, "\n"), data)
			}
		})
	}
}

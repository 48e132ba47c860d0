package quiesce

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"tails-backup/internal/logtest"
	"testing"
	"time"

	"tails-backup/internal/testtool"
	"tails-backup/tails"
)

// A mount table of Tails 6 with Persistent Storage features turned on (abridged).
const tailsMountinfo = `22 1 0:20 / / rw,noatime - overlay overlay rw,lowerdir=/run/live/rootfs/filesystem.squashfs/
25 22 7:0 / /run/live/rootfs/filesystem.squashfs ro,noatime - squashfs /dev/loop0 ro
40 22 8:1 / /run/live/medium ro,noatime - vfat /dev/sda1 ro
90 22 254:0 / /live/persistence/TailsData_unlocked rw,noatime - ext4 /dev/mapper/TailsData_unlocked rw,acl
91 22 254:0 /Persistent /home/amnesia/Persistent rw,noatime - ext4 /dev/mapper/TailsData_unlocked rw,acl
92 22 254:0 /thunderbird /home/amnesia/.thunderbird rw,noatime - ext4 /dev/mapper/TailsData_unlocked rw,acl
93 22 254:0 /apt/cache /var/cache/apt/archives rw,noatime - ext4 /dev/mapper/TailsData_unlocked rw,acl
94 22 254:0 /apt/lists /var/lib/apt/lists rw,noatime - ext4 /dev/mapper/TailsData_unlocked rw,acl
95 22 254:0 /nm-system-connections /etc/NetworkManager/system-connections rw,noatime shared:5 - ext4 /dev/mapper/TailsData_unlocked rw,acl
96 22 8:17 /gnupg /home/amnesia/.gnupg rw,noatime - ext4 /dev/sdb1 rw
97 22 254:0 /my\040folder /home/amnesia/odd\040place rw,noatime - ext4 /dev/mapper/TailsData_unlocked rw,acl
`

func featureSources(fs []tails.Feature) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Source)
	}
	return out
}

func TestActiveFeaturesFromMountinfo(t *testing.T) {
	cases := []struct {
		name    string
		table   string
		psMount string
		want    []string
		err     error
	}{
		{"tails", tailsMountinfo, tails.PersistentStorageMount, []string{"Persistent", "nm-system-connections", "apt", "thunderbird"}, nil},
		{"nothing bound", "90 22 254:0 / /live/persistence/TailsData_unlocked rw - ext4 /dev/dm-0 rw\n", tails.PersistentStorageMount, nil, nil},
		{"root not slash", "90 22 254:0 /data /ps rw - ext4 /dev/dm-0 rw\n91 22 254:0 /data/electrum /home/amnesia/.electrum rw - ext4 /dev/dm-0 rw\n92 22 254:0 /other/pidgin /home/amnesia/.purple rw - ext4 /dev/dm-0 rw\n", "/ps", []string{"electrum"}, nil},
		{"not unlocked", "22 1 0:20 / / rw - overlay overlay rw\n", tails.PersistentStorageMount, nil, ErrNoPersistentStorage},
		{"malformed", "garbage line\n", tails.PersistentStorageMount, nil, errors.New("any")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := ActiveFeaturesFromMountinfo(strings.NewReader(tc.table), tc.psMount)
			if tc.err != nil {
				if err == nil || (errors.Is(tc.err, ErrNoPersistentStorage) && !errors.Is(err, ErrNoPersistentStorage)) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := featureSources(fs); !slices.Equal(got, tc.want) {
				t.Errorf("features = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProcQuiescerActiveFeatures(t *testing.T) {
	ctx := logtest.Context(t)
	log, _ := logtest.New(t)
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	os.WriteFile(mi, []byte(tailsMountinfo), 0o644)
	q := NewProcQuiescer(log)
	q.Mountinfo = mi
	fs, err := q.ActiveFeatures(ctx)
	if err != nil || !slices.Equal(featureSources(fs), []string{"Persistent", "nm-system-connections", "apt", "thunderbird"}) {
		t.Fatalf("from mountinfo: %v %v", featureSources(fs), err)
	}
	// persistence.conf, when given, wins.
	bs, err := tails.ParsePersistenceConf(strings.NewReader("/home/amnesia/.electrum\tsource=electrum\n/home/amnesia\tsource=dotfiles,link\n"))
	if err != nil {
		t.Fatal(err)
	}
	q.Bindings = bs
	fs, err = q.ActiveFeatures(ctx)
	if err != nil || !slices.Equal(featureSources(fs), []string{"electrum", "dotfiles"}) {
		t.Fatalf("from bindings: %v %v", featureSources(fs), err)
	}
}

// fakeProc writes a /proc-like tree: pid -> (comm, uid, state); a negative uid writes no
// status file (the process vanished).
func fakeProc(t *testing.T, procs map[int]struct {
	comm  string
	uid   int
	state string
}) string {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		d := filepath.Join(root, strconv.Itoa(pid))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "comm"), []byte(p.comm+"\n"), 0o644)
		if p.uid >= 0 {
			status := fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\t%s\nTgid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t1000\t1000\t1000\t1000\n", p.comm, p.state, pid, p.uid, p.uid, p.uid, p.uid)
			os.WriteFile(filepath.Join(d, "status"), []byte(status), 0o644)
		}
	}
	os.MkdirAll(filepath.Join(root, "sys"), 0o755)
	os.Symlink("100", filepath.Join(root, "self"))
	return root
}

func featuresNamed(t *testing.T, sources ...string) []tails.Feature {
	var out []tails.Feature
	for _, f := range tails.Features() {
		if slices.Contains(sources, f.Source) {
			out = append(out, f)
		}
	}
	if len(out) != len(sources) {
		t.Fatalf("unknown feature among %v", sources)
	}
	return out
}

func TestBusyAppsFakeProc(t *testing.T) {
	type p = struct {
		comm  string
		uid   int
		state string
	}
	root := fakeProc(t, map[int]p{
		1:   {"systemd", 0, "S (sleeping)"},
		100: {"thunderbird", 1000, "S (sleeping)"},
		101: {"thunderbird-bin", 1000, "R (running)"},
		102: {"thunderbird", 0, "S (sleeping)"},   // another user's
		103: {"firefox.real", 1000, "Z (zombie)"}, // a zombie holds no file
		104: {"gpg-agent", 1000, "S (sleeping)"},  // may stay
		105: {"gpg", 1000, "S (sleeping)"},
		106: {"electrum", 1000, "S (sleeping)"}, // its feature is not active
		107: {"pidgin", -1, ""},                 // vanished
		108: {"firefox.real", 1000, "S (sleeping)"},
		109: {"NetworkManager", 0, "S (sleeping)"},
	})
	log, _ := logtest.New(t)
	q := NewProcQuiescer(log)
	q.ProcRoot, q.UID = root, 1000
	busy, err := q.BusyApps(logtest.Context(t), featuresNamed(t, "Persistent", "bookmarks", "thunderbird", "gnupg", "pidgin", "nm-system-connections"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range busy {
		got = append(got, fmt.Sprintf("%s/%s%v", b.Feature.Source, b.App.Name, b.PIDs))
	}
	want := []string{"bookmarks/Tor Browser[108]", "thunderbird/Thunderbird[100 101]", "gnupg/GnuPG[105]"}
	if !slices.Equal(got, want) {
		t.Errorf("busy = %v, want %v", got, want)
	}
	if busy, _ := q.BusyApps(logtest.Context(t), nil); len(busy) != 0 {
		t.Errorf("busy with no feature: %v", busy)
	}
}

func TestMatchProcessTruncates(t *testing.T) {
	if !matchProcess("averyveryverylo", []string{"averyveryverylongname"}) {
		t.Error("a 15-byte comm does not match its long name")
	}
	if matchProcess("gpg-agent", []string{"gpg"}) || matchProcess("gp", []string{"gpg"}) {
		t.Error("prefix matched")
	}
}

// startNamed starts program through a symlink called name, so that its comm is name. ready,
// if not empty, is a line to wait for on its standard output.
func startNamed(t *testing.T, name, program string, ready string, args ...string) *exec.Cmd {
	t.Helper()
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(program, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		if ready != "" {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == ready {
					close(exited) // reused below as "ready"
					break
				}
			}
		}
	}()
	if ready != "" {
		select {
		case <-exited:
		case <-time.After(time.Minute):
			t.Fatal("the process never got ready")
		}
	}
	t.Cleanup(func() {
		// Only our own child, by its PID: the test that made it stubborn cleans it up.
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// alive tells whether pid is running (not exited, not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	_, state, err := parseStatus(b)
	return err == nil && state != 'Z' && state != 'X'
}

func thunderbirdFeature() tails.Feature { return featuresNamed(nil, "thunderbird")[0] }

func realQuiescer(t *testing.T) *ProcQuiescer {
	log, _ := logtest.New(t)
	return NewProcQuiescer(log)
}

func TestCloseAppPolite(t *testing.T) {
	sleep := testtool.Program(t, "sleep", "coreutils")
	cmd := startNamed(t, "thunderbird", sleep, "", "1000")
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	q := realQuiescer(t)
	busy, err := q.BusyApps(logtest.Context(t), []tails.Feature{thunderbirdFeature()})
	if err != nil {
		t.Fatal(err)
	}
	var app *BusyApp
	for i := range busy {
		if slices.Contains(busy[i].PIDs, cmd.Process.Pid) {
			app = &busy[i]
		}
	}
	if app == nil {
		t.Fatalf("our thunderbird (pid %d) not found in %+v", cmd.Process.Pid, busy)
	}
	// Only ours: another thunderbird on this machine is none of this test's business.
	mine := BusyApp{App: app.App, Feature: app.Feature, PIDs: []int{cmd.Process.Pid}}
	start := time.Now()
	if err := q.CloseApp(logtest.Context(t), mine, time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v: did not notice the exit", d)
	}
	err = <-waited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("exit = %v, want SIGTERM", err)
	}
}

func TestCloseAppStubbornIsNotKilled(t *testing.T) {
	sh := testtool.Program(t, "sh", "dash")
	cmd := startNamed(t, "thunderbird", sh, "ready", "-c", `trap '' TERM; echo ready; while :; do sleep 1; done`)
	pid := cmd.Process.Pid
	q := realQuiescer(t)
	app := BusyApp{App: thunderbirdFeature().Apps[0], Feature: thunderbirdFeature(), PIDs: []int{pid}}
	err := q.CloseApp(logtest.Context(t), app, 300*time.Millisecond)
	if !errors.Is(err, ErrStillRunning) {
		t.Fatalf("err = %v, want ErrStillRunning", err)
	}
	var sr *StillRunningError
	if !errors.As(err, &sr) || !slices.Equal(sr.PIDs, []int{pid}) || sr.App.Name != "Thunderbird" {
		t.Errorf("err = %#v", err)
	}
	if !alive(pid) {
		t.Fatal("the stubborn application was killed")
	}
	// The caller asks the user and tries again: same answer, still alive.
	if err := q.CloseApp(logtest.Context(t), app, 100*time.Millisecond); !errors.Is(err, ErrStillRunning) || !alive(pid) {
		t.Fatalf("second try: %v, alive=%v", err, alive(pid))
	}
	// A cancelled context ends the wait early.
	ctx, cancel := context.WithCancel(logtest.Context(t))
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	if err := q.CloseApp(ctx, app, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if time.Since(start) > 30*time.Second || !alive(pid) {
		t.Error("cancel did not end the wait, or killed it")
	}
}

func TestCloseAppLeavesOtherProcesses(t *testing.T) {
	sleep := testtool.Program(t, "sleep", "coreutils")
	// A PID that is not (or no longer) the application: not signalled.
	other := startNamed(t, "not-thunder", sleep, "", "1000")
	q := realQuiescer(t)
	app := BusyApp{App: thunderbirdFeature().Apps[0], Feature: thunderbirdFeature(), PIDs: []int{other.Process.Pid}}
	if err := q.CloseApp(logtest.Context(t), app, time.Second); err != nil {
		t.Fatal(err)
	}
	if !alive(other.Process.Pid) {
		t.Fatal("a process that is not the application was signalled")
	}
	// A PID that is gone.
	gone := exec.Command(sleep, "0")
	gone.Run()
	app.PIDs = []int{gone.Process.Pid}
	if err := q.CloseApp(logtest.Context(t), app, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestBusySystemAppsOfRoot(t *testing.T) {
	type p = struct {
		comm  string
		uid   int
		state string
	}
	root := fakeProc(t, map[int]p{
		200: {"dpkg", 0, "S (sleeping)"},        // root's package manager: detected
		201: {"apt-get", 4242, "S (sleeping)"},  // neither root nor the session's: ignored
		202: {"thunderbird", 0, "S (sleeping)"}, // not a system app: root's copy is ignored
	})
	log, _ := logtest.New(t)
	q := NewProcQuiescer(log)
	q.ProcRoot, q.UID = root, 1000
	busy, err := q.BusyApps(logtest.Context(t), featuresNamed(t, "apt", "thunderbird"))
	if err != nil {
		t.Fatal(err)
	}
	if len(busy) != 1 || busy[0].App.Name != "The package manager" || !slices.Equal(busy[0].PIDs, []int{200}) || busy[0].Closable {
		t.Fatalf("busy = %+v, want the package manager (pid 200), not closable", busy)
	}
	// CloseApp never signals a process that is not the session user's: it just waits.
	err = q.CloseApp(logtest.Context(t), busy[0], 100*time.Millisecond)
	if err != nil && !errors.Is(err, ErrStillRunning) {
		t.Fatalf("CloseApp on root's process: %v", err)
	}
}

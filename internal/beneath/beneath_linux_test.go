package beneath

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tree builds, under a new temporary directory base, root/ holding a file, a folder and
// symlinks that lead out of root or within it, and a secret outside root. It returns base and
// an open descriptor of root.
func tree(t testing.TB) (string, int) {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{"root/dir/sub", "outside"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, data := range map[string]string{"root/file": "inside", "root/dir/f": "deep", "outside/secret": "secret"} {
		if err := os.WriteFile(filepath.Join(base, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"root/up":        "../outside",                   // a symlink out of root
		"root/abs":       filepath.Join(base, "outside"), // an absolute one
		"root/inner":     "dir",                          // one that stays inside
		"root/dir/loop":  "loop",
		"root/dir/fileL": "../file",
	} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(filepath.Join(base, "root"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return base, fd
}

func readAll(t *testing.T, fd int) string {
	t.Helper()
	buf := make([]byte, 64)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestOpen(t *testing.T) {
	base, root := tree(t)
	tests := []struct {
		rel   string
		flags int
		want  string // the content read, for a file
		errno error  // nil: opens
	}{
		{"file", unix.O_RDONLY, "inside", nil},
		{"dir/f", unix.O_RDONLY, "deep", nil},
		{"dir/../file", unix.O_RDONLY, "inside", nil}, // ".." that stays beneath root
		{".", unix.O_RDONLY | unix.O_DIRECTORY, "", nil},
		{"dir", unix.O_PATH, "", nil},
		{"missing", unix.O_RDONLY, "", unix.ENOENT},
		{"file/x", unix.O_RDONLY, "", unix.ENOTDIR},
		{"up/secret", unix.O_RDONLY, "", unix.ELOOP},
		{"abs/secret", unix.O_RDONLY, "", unix.ELOOP},
		{"inner/f", unix.O_RDONLY, "", unix.ELOOP}, // even a symlink that stays inside
		{"dir/loop", unix.O_RDONLY, "", unix.ELOOP},
		{"dir/fileL", unix.O_RDONLY, "", unix.ELOOP},
		{"inner", unix.O_RDONLY | unix.O_DIRECTORY, "", unix.ENOTDIR},
		{"..", unix.O_RDONLY, "", unix.EXDEV},
		{"../outside/secret", unix.O_RDONLY, "", unix.EXDEV},
		{"dir/../../outside/secret", unix.O_RDONLY, "", unix.EXDEV},
		{filepath.Join(base, "outside/secret"), unix.O_RDONLY, "", unix.EXDEV},
		{"/proc/self/fd/0", unix.O_RDONLY, "", unix.EXDEV},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			fd, err := Open(root, tt.rel, tt.flags)
			if tt.errno != nil {
				if fd != -1 || !errors.Is(err, tt.errno) {
					t.Fatalf("Open(%q) = %d, %v; want -1, %v", tt.rel, fd, err, tt.errno)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.rel, err)
			}
			defer unix.Close(fd)
			if tt.want != "" {
				if got := readAll(t, fd); got != tt.want {
					t.Errorf("Open(%q) read %q, want %q", tt.rel, got, tt.want)
				}
			}
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("Open(%q): close-on-exec not set (%v)", tt.rel, err)
			}
		})
	}
}

// TestOpenRefusesMountPoint: a mount point beneath the root, even a bind mount of the same
// file system, is EXDEV.
func TestOpenRefusesMountPoint(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount")
	}
	base, root := tree(t)
	if err := unix.Mount(filepath.Join(base, "outside"), filepath.Join(base, "root/dir/sub"), "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(base, "root/dir/sub"), unix.MNT_DETACH) })
	for _, rel := range []string{"dir/sub", "dir/sub/secret"} {
		if fd, err := Open(root, rel, unix.O_RDONLY); !errors.Is(err, unix.EXDEV) {
			t.Errorf("Open(%q) = %d, %v; want EXDEV", rel, fd, err)
		}
	}
	// OpenDir does not refuse it: its caller tells a mount by the device.
	dir, err := OpenDir(root, "dir")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	fd, err := OpenDir(dir, "sub")
	if err != nil {
		t.Fatalf("OpenDir(sub): %v", err)
	}
	unix.Close(fd)
}

func TestOpenAbs(t *testing.T) {
	base, _ := tree(t)
	tests := []struct {
		path    string
		errno   error
		pathErr bool
	}{
		{filepath.Join(base, "root/dir"), nil, false},
		{filepath.Join(base, "root/inner"), unix.ENOTDIR, true}, // O_DIRECTORY wins over ELOOP
		{filepath.Join(base, "root/inner/f"), unix.ELOOP, true},
		{filepath.Join(base, "root/up/secret"), unix.ELOOP, true},
		{filepath.Join(base, "root/missing"), unix.ENOENT, true},
		{"root/dir", nil, false},                              // relative: refused
		{filepath.Join(base, "root/../root/dir"), nil, false}, // not clean: refused
		{filepath.Join(base, "root/dir") + "/", nil, false},
	}
	for _, tt := range tests {
		fd, err := OpenAbs(tt.path, unix.O_RDONLY|unix.O_DIRECTORY)
		clean := filepath.IsAbs(tt.path) && filepath.Clean(tt.path) == tt.path
		switch {
		case tt.errno == nil && clean:
			if err != nil {
				t.Errorf("OpenAbs(%q): %v", tt.path, err)
				continue
			}
			unix.Close(fd)
		case tt.errno == nil:
			var pe *os.PathError
			if fd != -1 || err == nil || errors.As(err, &pe) {
				t.Errorf("OpenAbs(%q) = %d, %v; want a refusal of the path", tt.path, fd, err)
			}
		default:
			var pe *os.PathError
			if fd != -1 || !errors.Is(err, tt.errno) || !errors.As(err, &pe) {
				t.Errorf("OpenAbs(%q) = %d, %v; want an *os.PathError of %v", tt.path, fd, err, tt.errno)
			}
		}
	}
}

func TestOpenDir(t *testing.T) {
	_, root := tree(t)
	for _, tt := range []struct {
		name  string
		errno error
	}{{"dir", nil}, {"inner", unix.ENOTDIR}, {"up", unix.ENOTDIR}, {"file", unix.ENOTDIR}, {"missing", unix.ENOENT}} {
		fd, err := OpenDir(root, tt.name)
		if tt.errno == nil {
			if err != nil {
				t.Errorf("OpenDir(%q): %v", tt.name, err)
			}
			unix.Close(fd)
			continue
		}
		if fd != -1 || !errors.Is(err, tt.errno) {
			t.Errorf("OpenDir(%q) = %d, %v; want -1, %v", tt.name, fd, err, tt.errno)
		}
	}
}

// TestRetry: EINTR and EAGAIN are tried again, any other result is returned as it is.
func TestRetry(t *testing.T) {
	results := []error{unix.EINTR, unix.EAGAIN, unix.EINTR, nil}
	calls := 0
	fd, err := retry(func() (int, error) {
		err := results[calls]
		calls++
		if err != nil {
			return -1, err
		}
		return 7, nil
	})
	if fd != 7 || err != nil || calls != 4 {
		t.Errorf("retry = %d, %v after %d calls; want 7, nil after 4", fd, err, calls)
	}
	calls = 0
	if _, err := retry(func() (int, error) { calls++; return -1, unix.ELOOP }); err != unix.ELOOP || calls != 1 {
		t.Errorf("retry = %v after %d calls; want ELOOP after 1", err, calls)
	}
}

func TestFDPath(t *testing.T) {
	base, root := tree(t)
	if got, want := FDPath(root), fmt.Sprintf("/proc/self/fd/%d", root); got != want {
		t.Errorf("FDPath = %q, want %q", got, want)
	}
	// The path follows the inode, not the name.
	if err := os.Rename(filepath.Join(base, "root"), filepath.Join(base, "moved")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(AtPath(root, "file"))
	if err != nil || string(b) != "inside" {
		t.Errorf("read %s = %q, %v; want the file of the renamed root", AtPath(root, "file"), b, err)
	}
}

func mkNames(t *testing.T, dir string, n int) []string {
	t.Helper()
	var names []string
	for i := range n {
		name := fmt.Sprintf("entry-%04d-%s", i, strings.Repeat("x", i%50))
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func openDir(t *testing.T, p string) int {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestReadNames(t *testing.T) {
	dir := t.TempDir()
	want := mkNames(t, dir, 500)
	fd := openDir(t, dir)
	var cost int64
	for _, n := range want {
		cost += NameCost(n)
	}
	// A small buffer takes many getdents calls; a second listing starts again from the start.
	buf := make([]byte, 512)
	for range 2 {
		got, c, err := ReadNames(fd, buf, nil)
		if err != nil || !slices.Equal(got, want) || c != cost {
			t.Fatalf("ReadNames = %d names (sorted: %v), cost %d, %v; want %d names, cost %d", len(got), slices.IsSorted(got), c, err, len(want), cost)
		}
	}
	if got, _, err := ReadNames(fd, nil, nil); err != nil || !slices.Equal(got, want) {
		t.Errorf("ReadNames with no buffer = %d names, %v", len(got), err)
	}
	empty := openDir(t, t.TempDir())
	if got, c, err := ReadNames(empty, nil, nil); err != nil || len(got) != 0 || c != 0 {
		t.Errorf("ReadNames(empty) = %q, %d, %v", got, c, err)
	}
	pathFD, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pathFD)
	if _, _, err := ReadNames(pathFD, nil, nil); !errors.Is(err, unix.EBADF) {
		t.Errorf("ReadNames(O_PATH) = %v, want EBADF", err)
	}
}

func TestReadNamesBudget(t *testing.T) {
	dir := t.TempDir()
	want := mkNames(t, dir, 200)
	fd := openDir(t, dir)
	var cost int64
	for _, n := range want {
		cost += NameCost(n)
	}
	buf := make([]byte, 1024)
	tests := []struct {
		name           string
		perList, limit int64
		held           int64 // taken before, by other listings
		ok             bool
	}{
		{"room", cost, cost, 0, true},
		{"one listing too big", cost - 1, 10 * cost, 0, false},
		{"all listings too big", cost, 2 * cost, cost + 1, false},
		{"all listings just fit", cost, 2 * cost, cost, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Budget{PerList: tt.perList, Limit: tt.limit}
			if !b.Take(tt.held) {
				t.Fatal("cannot take what the other listings hold")
			}
			names, c, err := ReadNames(fd, buf, b)
			if !tt.ok {
				if err != ErrNoBudget || names != nil || c != 0 {
					t.Fatalf("ReadNames = %d names, %d, %v; want ErrNoBudget", len(names), c, err)
				}
				if used := b.used.Load(); used != tt.held {
					t.Errorf("after the refusal %d bytes are taken, want the %d taken before", used, tt.held)
				}
				return
			}
			if err != nil || !slices.Equal(names, want) || c != cost {
				t.Fatalf("ReadNames = %d names, %d, %v", len(names), c, err)
			}
			if used := b.used.Load(); used != tt.held+cost {
				t.Errorf("%d bytes taken, want %d", used, tt.held+cost)
			}
			b.Give(c)
			if used := b.used.Load(); used != tt.held {
				t.Errorf("%d bytes taken after Give, want %d", used, tt.held)
			}
		})
	}
	var none *Budget
	if !none.Take(1 << 40) {
		t.Error("a nil budget refused")
	}
	none.Give(1)
}

// TestReadNamesAllocations: listing with a reused buffer allocates the names and their slice,
// nothing per getdents call.
func TestReadNamesAllocations(t *testing.T) {
	dir := t.TempDir()
	mkNames(t, dir, 100)
	fd := openDir(t, dir)
	buf := make([]byte, DefaultBufSize)
	b := &Budget{PerList: 1 << 20, Limit: 1 << 20}
	allocs := testing.AllocsPerRun(20, func() {
		_, c, err := ReadNames(fd, buf, b)
		if err != nil {
			t.Fatal(err)
		}
		b.Give(c)
	})
	// 100 strings and the growing slice (about 8 grows), with some slack.
	if allocs > 120 {
		t.Errorf("%v allocations per listing of 100 names", allocs)
	}
}

func TestInside(t *testing.T) {
	base, root := tree(t)
	open := func(p string) int {
		fd, err := unix.Open(filepath.Join(base, p), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	sub, outside, top := open("root/dir/sub"), open("outside"), open(".")
	slash := open("/")
	tests := []struct {
		name      string
		root, dir int
		want      bool
	}{
		{"itself", root, root, true},
		{"a folder below", root, sub, true},
		{"a sibling", root, outside, false},
		{"the parent", root, top, false},
		{"below the parent", top, sub, true},
		{"below /", slash, sub, true},
		{"/ below a folder", sub, slash, false},
	}
	for _, tt := range tests {
		got, err := Inside(tt.root, tt.dir)
		if err != nil || got != tt.want {
			t.Errorf("%s: Inside = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	// Through a bind mount: ".." goes up the mount it is in.
	if os.Getuid() == 0 {
		if err := unix.Mount(filepath.Join(base, "root/dir"), filepath.Join(base, "outside"), "", unix.MS_BIND, ""); err == nil {
			defer unix.Unmount(filepath.Join(base, "outside"), unix.MNT_DETACH)
			via := open("outside/sub")
			if got, err := Inside(root, via); err != nil || got {
				t.Errorf("Inside(root, bind mount elsewhere) = %v, %v; want false: the path is not below root", got, err)
			}
			if got, err := Inside(outside, via); err != nil || got {
				t.Errorf("Inside(the covered folder, its bind mount) = %v, %v; want false", got, err)
			}
		}
	}
}

// FuzzOpen: whatever the relative path, Open opens nothing that is not root or beneath it.
func FuzzOpen(f *testing.F) {
	for _, s := range []string{"file", "dir/f", "..", "up/secret", "abs", "inner/f", "dir/../..", "/", "/proc/self/fd/3", ".", "dir/./sub/..", "dir//f", "\x00"} {
		f.Add(s)
	}
	_, root := tree(f)
	f.Fuzz(func(t *testing.T, rel string) {
		fd, err := Open(root, rel, unix.O_PATH)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		dir := fd
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// A file or a symlink (O_PATH opens one as the last component): its folder is the
			// one its path names, which must be beneath root. No symlink on the way: the
			// clean path names the folder the kernel went through.
			dir, err = Open(root, path.Dir(path.Clean(rel)), unix.O_PATH)
			if err != nil {
				t.Fatalf("Open(%q) opened a file, but its folder cannot be opened: %v", rel, err)
			}
			defer unix.Close(dir)
		}
		if in, err := Inside(root, dir); err != nil || !in {
			t.Fatalf("Open(%q) opened something outside root (%v)", rel, err)
		}
	})
}

func TestFutimens(t *testing.T) {
	base, root := tree(t)
	fd, err := Open(root, "file", unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var before unix.Stat_t
	if err := unix.Fstat(fd, &before); err != nil {
		t.Fatal(err)
	}
	mtime := unix.Timespec{Sec: 1234567890, Nsec: 123456789}
	if err := Futimens(fd, [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, mtime}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(base, "root/file"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mtim != mtime || st.Atim != before.Atim {
		t.Errorf("after Futimens mtime %v atime %v; want %v and the atime unchanged %v", st.Mtim, st.Atim, mtime, before.Atim)
	}
	pathFD, err := Open(root, "file", unix.O_PATH)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pathFD)
	if err := Futimens(pathFD, [2]unix.Timespec{mtime, mtime}); !errors.Is(err, unix.EBADF) {
		t.Errorf("Futimens(O_PATH) = %v, want EBADF", err)
	}
}

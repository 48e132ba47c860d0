//go:build linux

package secmem

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// childEnv makes the test binary a child that (maybe) hardens itself, says "ready" and waits
// for its standard input to close.
const childEnv = "SECMEM_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		if mode == "harden" {
			if err := Harden(); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
		}
		d, err := Dumpable()
		fmt.Printf("ready dumpable=%v err=%v\n", d, err)
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHardenKeepsOtherProcessesOfTheUserOut runs a process as amnesia (uid 1000), hardened or
// not, and a second process of amnesia that reads its environment through /proc, as any
// program of the session could read the agent's memory. Without Harden the read works; with it
// the kernel refuses it.
func TestHardenKeepsOtherProcessesOfTheUserOut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the processes as uid 1000")
	}
	bin := copyForAmnesia(t)
	for _, tc := range []struct {
		mode       string
		readable   bool
		dumpOwner0 bool
	}{
		{"plain", true, false},
		{"harden", false, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			child := exec.Command(bin, "-test.run=^$")
			child.Env = []string{childEnv + "=" + tc.mode}
			child.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
			in, err := child.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { in.Close(); _ = child.Wait() }()
			line, err := bufio.NewReader(out).ReadString('\n')
			want := fmt.Sprintf("ready dumpable=%v err=<nil>\n", tc.readable)
			if err != nil || line != want {
				t.Fatalf("child said %q, %v", line, err)
			}
			environ := fmt.Sprintf("/proc/%d/environ", child.Process.Pid)
			var st syscall.Stat_t
			if err := syscall.Stat(environ, &st); err != nil {
				t.Fatal(err)
			}
			if got := st.Uid == 0; got != tc.dumpOwner0 {
				t.Errorf("%s belongs to uid %d", environ, st.Uid)
			}
			reader := exec.Command("/bin/cat", environ)
			reader.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
			data, err := reader.Output()
			if got := err == nil && bytes.Contains(data, []byte(childEnv)); got != tc.readable {
				t.Errorf("another process of uid 1000 read %s: %v (%q); want readable=%v", environ, err, data, tc.readable)
			}
		})
	}
}

// copyForAmnesia copies the test binary where uid 1000 can run it: go test builds it in a
// folder only root may enter.
func copyForAmnesia(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "secmem-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "test-binary")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func vmLocked(t *testing.T) int64 {
	t.Helper()
	n, err := LockedBytes()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewLocksAPageOfItsOwnAndWipeUnlocksAndClears(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (or a RLIMIT_MEMLOCK) to be sure mlock works")
	}
	before := vmLocked(t)
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = New(i * 100)
		if len(bufs[i]) != i*100 || cap(bufs[i]) != Size {
			t.Fatalf("New(%d): len %d cap %d", i*100, len(bufs[i]), cap(bufs[i]))
		}
		if p := uintptr(unsafe.Pointer(&bufs[i][:1][0])); p%Size != 0 {
			t.Fatalf("buffer %d at %#x is not page aligned: it would share its page", i, p)
		}
	}
	if got := vmLocked(t) - before; got != 8*Size {
		t.Fatalf("VmLck grew by %d bytes for 8 buffers, want %d", got, 8*Size/1024)
	}
	for _, b := range bufs {
		b = append(b, "secret"...)
		Wipe(b)
		if !bytes.Equal(b[:cap(b)], make([]byte, Size)) {
			t.Fatal("Wipe left bytes in the buffer")
		}
	}
	if got := vmLocked(t); got != before {
		t.Fatalf("VmLck is %d bytes after Wipe, was %d", got, before)
	}
	Wipe(nil)
	Wipe([]byte("not locked"[:3]))
}

func TestNewRefusesBigBuffers(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(Size+1) did not panic")
		}
	}()
	New(Size + 1)
}

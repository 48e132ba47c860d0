package udev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitTimeout bounds every wait in these tests; generous, for a loaded 2-core machine.
const waitTimeout = 10 * time.Second

// netnsPair is a Monitor and a sending netlink socket in a private network namespace,
// so that the test can play udevd without its broadcasts reaching the host's listeners
// (udisksd, other tests): userspace uevent broadcasts stay in their namespace.
type netnsPair struct {
	mon    *Monitor
	sender int
}

func openInNetns(t *testing.T, cfg Config) netnsPair {
	t.Helper()
	type result struct {
		pair netnsPair
		err  error
		skip bool
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, now in another namespace, exits with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare(CLONE_NEWNET): %w", err), skip: true}
			return
		}
		mon, err := Open(cfg)
		if err != nil {
			ch <- result{err: err}
			return
		}
		sender, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
		if err != nil {
			mon.Close()
			ch <- result{err: err}
			return
		}
		ch <- result{pair: netnsPair{mon: mon, sender: sender}}
	}()
	r := <-ch
	if r.skip {
		t.Skipf("needs root for a private network namespace: %v", r.err)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() {
		r.pair.mon.Close()
		unix.Close(r.pair.sender)
	})
	return r.pair
}

// send sends pkt to the multicast groups, or to port when groups is 0, with the
// credentials of uid (root may claim any uid).
func (p netnsPair) send(t *testing.T, pkt []byte, groups Group, port, uid uint32) {
	t.Helper()
	oob := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uid, Gid: uid})
	err := unix.Sendmsg(p.sender, pkt, oob, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: uint32(groups), Pid: port}, 0)
	// A multicast send also tries the kernel's socket, which refuses; the broadcast went out.
	if err != nil && !(groups != 0 && errors.Is(err, unix.ECONNREFUSED)) {
		t.Fatalf("sendmsg: %v", err)
	}
}

func testEvent(action Action, devpath, subsystem, devtype string, seq int, extra ...string) []string {
	p := []string{"ACTION=" + string(action), "DEVPATH=" + devpath, "SUBSYSTEM=" + subsystem, fmt.Sprintf("SEQNUM=%d", seq)}
	if devtype != "" {
		p = append(p, "DEVTYPE="+devtype)
	}
	return append(p, extra...)
}

func kernelPacket(props []string) []byte {
	var action, devpath string
	for _, p := range props {
		if v, ok := strings.CutPrefix(p, "ACTION="); ok {
			action = v
		}
		if v, ok := strings.CutPrefix(p, "DEVPATH="); ok {
			devpath = v
		}
	}
	return []byte(action + "@" + devpath + "\x00" + strings.Join(props, "\x00") + "\x00")
}

// receive returns the next event whose DevPath starts with /test/, skipping real
// kernel uevents that reach every namespace.
func receive(t *testing.T, m *Monitor) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		ev, err := m.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if strings.HasPrefix(ev.DevPath, "/test/") {
			return ev
		}
	}
}

// TestMonitorSenderRules plays udevd and impostors over real netlink: only root's
// multicast packets in the right format get through; the rest are counted in Dropped.
// Each bad packet is sent before a good one, and a socket delivers in order, so
// receiving the good one proves the bad ones were read and dropped.
func TestMonitorSenderRules(t *testing.T) {
	p := openInNetns(t, Config{Groups: GroupUdev | GroupKernel})
	port, err := p.mon.port()
	if err != nil {
		t.Fatal(err)
	}
	good := func(seq int) []byte {
		return encodeLibudev(testEvent(ActionAdd, fmt.Sprintf("/test/good%d", seq), "block", "disk", seq, "DEVNAME=/dev/sdz", "ID_FS_TYPE=ext4"), "block", "disk")
	}
	bad := []struct {
		name   string
		pkt    []byte
		groups Group
		port   uint32
		uid    uint32
	}{
		{"uid 1000 on udev group", good(100), GroupUdev, 0, 1000},
		{"unicast from a process", good(101), 0, port, 0},
		{"kernel format from a process", kernelPacket(testEvent(ActionAdd, "/test/k", "block", "disk", 102)), GroupKernel, 0, 0},
		{"kernel format on udev group", kernelPacket(testEvent(ActionAdd, "/test/k", "block", "disk", 103)), GroupUdev, 0, 0},
		{"udev format on kernel group", good(104), GroupKernel, 0, 0},
		{"malformed", []byte(libudevPrefix + "garbage garbage garbage garbage garbage"), GroupUdev, 0, 0},
		{"bad property", encodeLibudev(append(testEvent(ActionAdd, "/test/m", "block", "disk", 105), "NOEQUALS"), "block", "disk"), GroupUdev, 0, 0},
	}
	for i, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			before := p.mon.Dropped()
			p.send(t, b.pkt, b.groups, b.port, b.uid)
			p.send(t, good(i+1), GroupUdev, 0, 0)
			ev := receive(t, p.mon)
			if ev.DevPath != fmt.Sprintf("/test/good%d", i+1) {
				t.Fatalf("received %s, want the good packet after the bad one", ev.DevPath)
			}
			if got := p.mon.Dropped() - before; got != 1 {
				t.Errorf("Dropped grew by %d, want 1", got)
			}
		})
	}
}

// TestMonitorTrustedUnicastKernelFormat checks a kernel-format packet is parsed on the
// socket path; only the kernel can send one from port 0, so the test trusts its port.
func TestMonitorTrustedUnicastKernelFormat(t *testing.T) {
	p := openInNetns(t, Config{Groups: GroupKernel})
	port, err := p.mon.port()
	if err != nil {
		t.Fatal(err)
	}
	var sa unix.Sockaddr
	p.send(t, []byte("x"), 0, port, 0) // autobinds the sender; dropped as untrusted
	if sa, err = unix.Getsockname(p.sender); err != nil {
		t.Fatal(err)
	}
	p.mon.trustedPort = sa.(*unix.SockaddrNetlink).Pid
	p.send(t, kernelPacket(testEvent(ActionRemove, "/test/sdz", "block", "disk", 9, "DEVNAME=sdz", "MAJOR=8", "MINOR=0")), 0, port, 0)
	ev := receive(t, p.mon)
	if ev.Action != ActionRemove || ev.DevName != "/dev/sdz" || ev.SeqNum != 9 {
		t.Errorf("got %+v", ev)
	}
	if p.mon.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1 (the untrusted first packet)", p.mon.Dropped())
	}
}

// TestMonitorMatches checks both the in-kernel BPF filter and the in-process one:
// only block/disk and block/partition events arrive, and filtered ones are not "dropped".
func TestMonitorMatches(t *testing.T) {
	p := openInNetns(t, Config{Matches: []Match{{"block", "disk"}, {"block", "partition"}}})
	send := func(path, subsystem, devtype string, seq int) {
		p.send(t, encodeLibudev(testEvent(ActionAdd, path, subsystem, devtype, seq), subsystem, devtype), GroupUdev, 0, 0)
	}
	send("/test/usb", "usb", "usb_device", 1)
	send("/test/sdz", "block", "disk", 2)
	send("/test/dm", "block", "", 3)
	send("/test/scsi", "scsi", "scsi_device", 4)
	send("/test/sdz1", "block", "partition", 5)
	// A packet whose header hashes say block/disk but whose properties say otherwise
	// passes the kernel filter; the in-process check must stop it.
	p.send(t, encodeLibudev(testEvent(ActionAdd, "/test/liar", "usb", "usb_device", 6), "block", "disk"), GroupUdev, 0, 0)
	send("/test/sdz2", "block", "partition", 7)
	var got []string
	for range 3 {
		got = append(got, receive(t, p.mon).DevPath)
	}
	if want := "/test/sdz /test/sdz1 /test/sdz2"; strings.Join(got, " ") != want {
		t.Errorf("received %q, want %q", got, want)
	}
	if p.mon.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", p.mon.Dropped())
	}
}

// TestMonitorOverflow fills a tiny receive buffer: the next Receive reports ErrOverflow,
// and the Monitor then goes on delivering what was queued.
func TestMonitorOverflow(t *testing.T) {
	p := openInNetns(t, Config{ReceiveBufferSize: 1}) // the kernel raises it to its minimum
	for i := 1; i <= 200; i++ {
		p.send(t, encodeLibudev(testEvent(ActionChange, fmt.Sprintf("/test/d%d", i), "block", "disk", i, strings.Repeat("X", 500)+"=1"), "block", "disk"), GroupUdev, 0, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := p.mon.Receive(ctx)
	if !errors.Is(err, ErrOverflow) {
		t.Fatalf("Receive after a flood = %v, want ErrOverflow", err)
	}
	if p.mon.Overflows() != 1 {
		t.Errorf("Overflows = %d, want 1", p.mon.Overflows())
	}
	ev := receive(t, p.mon)
	if ev.DevPath != "/test/d1" {
		t.Errorf("first queued event %s, want /test/d1", ev.DevPath)
	}
}

// socketInode identifies the monitor's socket, to look for it among open fds later.
func socketInode(t *testing.T, m *Monitor) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(m.file.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("socket:[%d]", st.Ino)
}

func socketOpen(t *testing.T, inode string) bool {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if target, _ := os.Readlink("/proc/self/fd/" + e.Name()); target == inode {
			return true
		}
	}
	return false
}

// waitGoroutines waits (polling: the runtime offers nothing to wait on) until at most n
// goroutines run, and reports whether that happened.
func waitGoroutines(n int) bool {
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestRunCancelLeaksNothing runs the usual consumer shape, lets one event through so
// that Run is back in its wait, cancels, and checks that Run returns context.Canceled,
// the channel is closed by its owner, no goroutine remains, and Close releases the socket.
func TestRunCancelLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	p := openInNetns(t, Config{Matches: []Match{{Subsystem: "block"}}})
	mon := p.mon
	inode := socketInode(t, mon)
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event)
	runErr := make(chan error, 1)
	go func() {
		defer close(events)
		runErr <- mon.Run(ctx, events)
	}()
	p.send(t, encodeLibudev(testEvent(ActionAdd, "/test/one", "block", "disk", 1), "block", "disk"), GroupUdev, 0, 0)
	select {
	case ev := <-events:
		if ev.DevPath != "/test/one" {
			t.Errorf("got %s", ev.DevPath)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no event from Run")
	}
	cancel()
	select {
	case err := <-runErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
	}
	for range events { // ends when the owner closes it
	}
	if err := mon.Close(); err != nil {
		t.Fatal(err)
	}
	if socketOpen(t, inode) {
		t.Errorf("%s still open after Close", inode)
	}
	if !waitGoroutines(before) {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
}

// TestReceiveAgainAfterCancel checks a cancelled receive leaves the Monitor usable:
// the read deadline used to wake it is reset.
func TestReceiveAgainAfterCancel(t *testing.T) {
	p := openInNetns(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.mon.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive = %v, want context.DeadlineExceeded", err)
	}
	p.send(t, encodeLibudev(testEvent(ActionAdd, "/test/again", "block", "disk", 1), "block", "disk"), GroupUdev, 0, 0)
	if ev := receive(t, p.mon); ev.DevPath != "/test/again" {
		t.Errorf("got %s", ev.DevPath)
	}
}

// TestCloseWakesReceive checks Close unblocks a waiting Receive with os.ErrClosed.
func TestCloseWakesReceive(t *testing.T) {
	mon, err := Open(Config{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := mon.Receive(context.Background())
		done <- err
	}()
	// Close may come before the goroutine blocks; either way Receive must end with ErrClosed.
	if err := mon.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Receive = %v, want os.ErrClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Receive still blocked after Close")
	}
	if err := mon.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v, want os.ErrClosed", err)
	}
}

// TestAccept covers the sender rules that userspace cannot provoke over a socket:
// the kernel's own port 0, truncation flags and missing credentials.
func TestAccept(t *testing.T) {
	m := &Monitor{}
	root := unix.UnixCredentials(&unix.Ucred{Uid: 0})
	user := unix.UnixCredentials(&unix.Ucred{Uid: 1000})
	kernelPkt := readPacket(t, "kernel-change-loop3.bin")
	udevPkt := readPacket(t, "udev-change-loop3-ext4.bin")
	kernelAddr := &unix.SockaddrNetlink{Groups: uint32(GroupKernel), Pid: 0}
	udevdAddr := &unix.SockaddrNetlink{Groups: uint32(GroupUdev), Pid: 4242}
	tests := []struct {
		name   string
		pkt    []byte
		oob    []byte
		flags  int
		from   unix.Sockaddr
		accept bool
	}{
		{"kernel from port 0", kernelPkt, root, 0, kernelAddr, true},
		{"udevd", udevPkt, root, 0, udevdAddr, true},
		{"kernel format from port 7", kernelPkt, root, 0, &unix.SockaddrNetlink{Groups: 1, Pid: 7}, false},
		{"no credentials", udevPkt, nil, 0, udevdAddr, false},
		{"garbled credentials", udevPkt, root[:len(root)-8], 0, udevdAddr, false},
		{"user credentials", udevPkt, user, 0, udevdAddr, false},
		{"truncated", udevPkt, root, unix.MSG_TRUNC, udevdAddr, false},
		{"credentials truncated", udevPkt, root, unix.MSG_CTRUNC, udevdAddr, false},
		{"not netlink", udevPkt, root, 0, &unix.SockaddrUnix{Name: "x"}, false},
		{"no address", udevPkt, root, 0, nil, false},
		{"unicast", udevPkt, root, 0, &unix.SockaddrNetlink{Pid: 4242}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, reason := m.accept(tt.pkt, tt.oob, tt.flags, tt.from)
			if (reason == "") != tt.accept {
				t.Errorf("accept: reason %q, want accepted=%v", reason, tt.accept)
			}
		})
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	if _, err := Open(Config{Groups: 4}); err == nil {
		t.Error("Open accepted group 4")
	}
	many := make([]Match, maxFilterMatches+1)
	for i := range many {
		many[i] = Match{Subsystem: fmt.Sprint(i)}
	}
	if _, err := Open(Config{Matches: many}); err == nil {
		t.Error("Open accepted too many matches")
	}
}

// TestOpenReceiveBuffer checks the large default buffer is really granted (as root,
// SO_RCVBUFFORCE passes net.core.rmem_max; the kernel reports twice the request).
func TestOpenReceiveBuffer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_RCVBUFFORCE needs root")
	}
	mon, err := Open(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	var size int
	var serr error
	if err := mon.conn.Control(func(fd uintptr) {
		size, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if size < DefaultReceiveBufferSize {
		t.Errorf("SO_RCVBUF = %d, want at least %d", size, DefaultReceiveBufferSize)
	}
}

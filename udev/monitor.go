package udev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Group is a set of NETLINK_KOBJECT_UEVENT multicast groups, as the bit mask bind(2) takes.
type Group uint32

// The two uevent groups. Listen to GroupUdev unless you need events before udevd has run its rules.
const (
	// GroupKernel carries the kernel's raw uevents, sent before udevd processes them
	// ("ACTION@DEVPATH\0KEY=VALUE\0..."): no ID_FS_* and friends, and the device node may not exist yet.
	GroupKernel Group = 1
	// GroupUdev carries the events udevd re-broadcasts after its rules ran, with every property.
	GroupUdev Group = 2
)

// DefaultReceiveBufferSize is the socket receive buffer used when Config leaves it zero:
// 128 MiB, as udevadm monitor asks, so that a burst of events (a hub full of sticks) is not lost.
const DefaultReceiveBufferSize = 128 << 20

// packetBufferSize bounds one datagram; libudev itself reads at most 8 KiB.
const packetBufferSize = 64 << 10

// ErrOverflow means the kernel dropped events because the receive buffer was full.
// The Monitor stays usable: re-enumerate the devices to learn the current state, then
// receive again.
var ErrOverflow = errors.New("udev monitor: receive buffer overflowed, events were lost")

// Config says what a Monitor listens to.
type Config struct {
	// Groups selects the multicast groups; zero means GroupUdev.
	// GroupKernel|GroupUdev receives both formats.
	Groups Group
	// Matches keeps only events of these subsystems/devtypes; none keeps all.
	Matches []Match
	// ReceiveBufferSize is the socket receive buffer in bytes; zero means DefaultReceiveBufferSize.
	ReceiveBufferSize int
	// Log receives debug messages about dropped packets; nil discards them.
	Log *logrus.Entry
}

// Monitor receives uevents from a netlink socket. Receive, Run and Close may be called
// from different goroutines; concurrent receives are served one after the other.
type Monitor struct {
	file    *os.File // owns the socket; closing it wakes a blocked receive
	conn    syscall.RawConn
	matches []Match
	log     *logrus.Entry

	// trustedPort is the netlink port of a unicast sender accepted as if it were
	// udevd or the kernel; zero trusts no unicast sender. Only the tests set it.
	trustedPort uint32

	mu  sync.Mutex // guards buf and oob, and the read deadline
	buf []byte
	oob []byte

	closed    atomic.Bool // set before the socket closes, to name the error of a woken read
	dropped   atomic.Uint64
	overflows atomic.Uint64
}

// Open creates the netlink socket, subscribes it to cfg.Groups and installs the
// subsystem filter. Events are queued in the socket from then on, so a caller that
// opens the Monitor before enumerating devices misses no event in between.
func Open(cfg Config) (*Monitor, error) {
	groups := cfg.Groups
	if groups == 0 {
		groups = GroupUdev
	}
	if groups&^(GroupKernel|GroupUdev) != 0 {
		return nil, fmt.Errorf("udev monitor: unknown groups %#x", uint32(groups))
	}
	prog, err := socketFilter(cfg.Matches)
	if err != nil {
		return nil, fmt.Errorf("udev monitor: %w", err)
	}
	rcvbuf := cfg.ReceiveBufferSize
	if rcvbuf <= 0 {
		rcvbuf = DefaultReceiveBufferSize
	}
	log := cfg.Log
	if log == nil {
		discard := logrus.New()
		discard.SetOutput(io.Discard)
		log = logrus.NewEntry(discard)
	}

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("udev monitor: netlink socket: %w", err)
	}
	if err := setupSocket(fd, groups, rcvbuf, prog, log); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("udev monitor: %w", err)
	}
	// A non-blocking fd given to os.NewFile joins the runtime poller, which gives us
	// read deadlines (for context cancellation) and a Close that wakes a blocked read.
	file := os.NewFile(uintptr(fd), "netlink-uevent")
	conn, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("udev monitor: %w", err)
	}
	return &Monitor{
		file:    file,
		conn:    conn,
		matches: append([]Match(nil), cfg.Matches...),
		log:     log,
		buf:     make([]byte, packetBufferSize),
		oob:     make([]byte, unix.CmsgSpace(unix.SizeofUcred)),
	}, nil
}

func setupSocket(fd int, groups Group, rcvbuf int, prog []unix.SockFilter, log *logrus.Entry) error {
	// SO_RCVBUFFORCE passes rmem_max but needs CAP_NET_ADMIN; without it take what SO_RCVBUF gives.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		log.WithError(err).Debug("udev monitor: SO_RCVBUFFORCE refused, falling back to SO_RCVBUF")
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return fmt.Errorf("set receive buffer: %w", err)
		}
	}
	// Ask for the sender's credentials on every message, to accept only root's.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return fmt.Errorf("set SO_PASSCRED: %w", err)
	}
	if err := attachFilter(fd, prog); err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: uint32(groups)}); err != nil {
		return fmt.Errorf("bind netlink groups %#x: %w", uint32(groups), err)
	}
	return nil
}

// Dropped returns how many packets were discarded as malformed, truncated or from an
// untrusted sender. Packets that merely fail the Matches are not counted.
func (m *Monitor) Dropped() uint64 { return m.dropped.Load() }

// Overflows returns how many times the receive buffer overflowed (each one an ErrOverflow).
func (m *Monitor) Overflows() uint64 { return m.overflows.Load() }

// Close closes the socket and wakes any blocked Receive or Run, which then return an
// error matching os.ErrClosed. Closing twice returns such an error too.
func (m *Monitor) Close() error {
	m.closed.Store(true)
	if err := m.file.Close(); err != nil {
		return fmt.Errorf("udev monitor: %w", err)
	}
	return nil
}

// Run receives events and sends them on events until ctx is done or receiving fails.
// It does not close events: the caller owns the channel.
//
// Run returns ctx.Err() once ctx is done; an error matching ErrOverflow when events were
// lost (the Monitor stays open: re-enumerate, then call Run again); an error matching
// os.ErrClosed after Close; or another receive error.
func (m *Monitor) Run(ctx context.Context, events chan<- Event) error {
	for {
		ev, err := m.Receive(ctx)
		if err != nil {
			return err
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Receive blocks until an event that passes the Matches arrives and returns it.
// Packets that are malformed or not from root (the kernel or udevd) are skipped and
// counted in Dropped. The errors are as for Run.
func (m *Monitor) Receive(ctx context.Context) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return Event{}, fmt.Errorf("udev monitor: %w", os.ErrClosed)
	}

	// A deadline in the past wakes the poller's wait; reset it, as an earlier call may have left one.
	if err := m.file.SetReadDeadline(time.Time{}); err != nil {
		return Event{}, fmt.Errorf("udev monitor: %w", err)
	}
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		m.file.SetReadDeadline(time.Unix(1, 0))
		close(woken)
	})
	defer func() {
		if !stop() {
			<-woken // the deadline must be set before the next call resets it
		}
	}()

	for {
		n, oobn, flags, from, err := m.recv()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
			return Event{}, ctx.Err()
		case err != nil && m.closed.Load():
			// The poller's own error for a closed file is not exported; name it.
			return Event{}, fmt.Errorf("udev monitor: %w", os.ErrClosed)
		case errors.Is(err, unix.ENOBUFS):
			m.overflows.Add(1)
			return Event{}, ErrOverflow
		case err != nil:
			return Event{}, fmt.Errorf("udev monitor: receive: %w", err)
		}
		ev, reason := m.accept(m.buf[:n], m.oob[:oobn], flags, from)
		if reason != "" {
			m.dropped.Add(1)
			m.log.WithField("reason", reason).Debug("udev monitor: dropped packet")
			continue
		}
		if !matchAny(m.matches, &ev.Device) {
			continue
		}
		return ev, nil
	}
}

// recv reads one datagram, waiting in the runtime poller while there is none.
func (m *Monitor) recv() (n, oobn, flags int, from unix.Sockaddr, err error) {
	rerr := m.conn.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, from, err = unix.Recvmsg(int(fd), m.buf, m.oob, 0)
			if err != unix.EINTR {
				break
			}
		}
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return 0, 0, 0, nil, rerr
	}
	return n, oobn, flags, from, err
}

// accept checks where a datagram came from and parses it. It returns the event, or
// why the packet must be dropped. The rules are libudev's: a multicast sender (or a
// trusted unicast one), root's credentials, and for kernel-format packets port 0,
// which only the kernel has; a format must also come from its own group.
func (m *Monitor) accept(pkt, oob []byte, flags int, from unix.Sockaddr) (Event, string) {
	if flags&unix.MSG_TRUNC != 0 {
		return Event{}, "truncated packet"
	}
	if flags&unix.MSG_CTRUNC != 0 {
		return Event{}, "truncated credentials"
	}
	sa, ok := from.(*unix.SockaddrNetlink)
	if !ok {
		return Event{}, "sender is not a netlink address"
	}
	unicast := sa.Groups == 0
	if unicast && (m.trustedPort == 0 || sa.Pid != m.trustedPort) {
		return Event{}, fmt.Sprintf("unicast packet from untrusted port %d", sa.Pid)
	}
	uid, ok := senderUID(oob)
	if !ok {
		return Event{}, "no sender credentials"
	}
	if uid != 0 {
		return Event{}, fmt.Sprintf("sender uid %d is not root", uid)
	}
	ev, kind, err := parsePacket(pkt)
	if err != nil {
		return Event{}, err.Error()
	}
	switch {
	case unicast:
	case kind == kindKernel && Group(sa.Groups) != GroupKernel:
		return Event{}, fmt.Sprintf("kernel-format packet on groups %#x", sa.Groups)
	case kind == kindKernel && sa.Pid != 0:
		return Event{}, fmt.Sprintf("kernel-format packet from port %d, not the kernel", sa.Pid)
	case kind == kindLibudev && Group(sa.Groups) != GroupUdev:
		return Event{}, fmt.Sprintf("udev-format packet on groups %#x", sa.Groups)
	}
	return ev, ""
}

// senderUID returns the uid from the SCM_CREDENTIALS message in oob.
func senderUID(oob []byte) (uint32, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_CREDENTIALS {
			continue
		}
		cred, err := unix.ParseUnixCredentials(&msgs[i])
		if err != nil {
			return 0, false
		}
		return cred.Uid, true
	}
	return 0, false
}

// port returns the netlink port id the kernel gave the socket (the tests send to it).
func (m *Monitor) port() (uint32, error) {
	var port uint32
	var serr error
	err := m.conn.Control(func(fd uintptr) {
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			serr = err
			return
		}
		nl, ok := sa.(*unix.SockaddrNetlink)
		if !ok {
			serr = fmt.Errorf("socket name %T is not netlink", sa)
			return
		}
		port = nl.Pid
	})
	if err == nil {
		err = serr
	}
	return port, err
}

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"tails-backup/e2e/proto"
)

// Guest is the driver's end of the control channel: it runs commands in the guest through
// e2e-guest serve, over a virtio serial port that QEMU exposes as a unix socket.
type Guest struct {
	conn net.Conn

	mu      sync.Mutex
	enc     *json.Encoder
	nextID  uint64
	pending map[uint64]chan proto.Response
	err     error
}

func dialGuest(ctx context.Context, path string) (*Guest, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to the guest's control channel %s: %w", path, err)
	}
	g := &Guest{conn: conn, enc: json.NewEncoder(conn), pending: map[uint64]chan proto.Response{}}
	go g.read()
	return g, nil
}

func (g *Guest) read() {
	sc := bufio.NewScanner(g.conn)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		var r proto.Response
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		g.mu.Lock()
		ch, ok := g.pending[r.ID]
		delete(g.pending, r.ID)
		g.mu.Unlock()
		if ok {
			ch <- r
		}
	}
	g.mu.Lock()
	g.err = errors.New("the guest's control channel closed")
	for _, ch := range g.pending {
		close(ch)
	}
	g.pending = map[uint64]chan proto.Response{}
	g.mu.Unlock()
}

// Exec runs req in the guest and returns its outcome (a non-zero exit is not an error here).
func (g *Guest) Exec(ctx context.Context, req proto.Request) (proto.Response, error) {
	g.mu.Lock()
	if g.err != nil {
		g.mu.Unlock()
		return proto.Response{}, g.err
	}
	g.nextID++
	req.ID = g.nextID
	ch := make(chan proto.Response, 1)
	g.pending[req.ID] = ch
	err := g.enc.Encode(req)
	g.mu.Unlock()
	if err != nil {
		return proto.Response{}, fmt.Errorf("send to the guest: %w", err)
	}
	select {
	case <-ctx.Done():
		g.mu.Lock()
		delete(g.pending, req.ID)
		g.mu.Unlock()
		return proto.Response{}, fmt.Errorf("%s: %w", strings.Join(req.Argv, " "), ctx.Err())
	case r, ok := <-ch:
		if !ok {
			return proto.Response{}, g.err
		}
		return r, nil
	}
}

// CommandError is a guest command that failed.
type CommandError struct {
	Argv   []string
	Exit   int
	Stderr string
	Err    string
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("guest: %s: exit %d", strings.Join(e.Argv, " "), e.Exit)
	if e.Err != "" {
		msg += " (" + e.Err + ")"
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// Cmd is a command to run in the guest.
type Cmd struct {
	User    string
	Argv    []string
	Stdin   string
	Env     []string
	Timeout time.Duration
}

// Run runs c and returns its standard output; a non-zero exit is a *CommandError.
func (g *Guest) Run(ctx context.Context, c Cmd) (string, error) {
	r, err := g.Exec(ctx, proto.Request{Argv: c.Argv, User: c.User, Stdin: []byte(c.Stdin), Env: c.Env, Timeout: c.Timeout})
	if err != nil {
		return "", err
	}
	if r.Exit != 0 || r.Error != "" {
		return string(r.Stdout), &CommandError{Argv: c.Argv, Exit: r.Exit, Stderr: string(r.Stderr), Err: r.Error}
	}
	return string(r.Stdout), nil
}

// Root runs argv as root.
func (g *Guest) Root(ctx context.Context, argv ...string) (string, error) {
	return g.Run(ctx, Cmd{Argv: argv})
}

// User runs argv as amnesia, in the environment of the desktop session.
func (g *Guest) User(ctx context.Context, argv ...string) (string, error) {
	return g.Run(ctx, Cmd{User: "amnesia", Argv: argv})
}

// Start starts argv in the background as user and returns its PID.
func (g *Guest) Start(ctx context.Context, user string, argv ...string) (int, error) {
	r, err := g.Exec(ctx, proto.Request{Argv: argv, User: user, Background: true})
	if err != nil {
		return 0, err
	}
	if r.Error != "" {
		return 0, &CommandError{Argv: argv, Exit: r.Exit, Err: r.Error}
	}
	return r.PID, nil
}

// WaitUntil runs argv as root every interval until it succeeds or ctx ends: for guest state
// that has no event to wait on (a socket appearing, a unit becoming active).
func (g *Guest) WaitUntil(ctx context.Context, interval time.Duration, c Cmd) error {
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := g.Run(cctx, c)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// Close closes the channel.
func (g *Guest) Close() error { return g.conn.Close() }

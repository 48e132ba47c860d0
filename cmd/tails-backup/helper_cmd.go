package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	gosync "sync"
	"syscall"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/helper"
	"tails-backup/l10n"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// errHelperArgs is the one-sentence refusal of a command line with arguments.
var errHelperArgs = errors.New(l10n.Mark("the helper takes no arguments (the request comes on standard input), so it refuses to run"))

// errHelperByHand is the answer to a person who runs the helper at a terminal.
var errHelperByHand = errors.New(l10n.Mark("the helper is not meant to be run by hand: the session agent and the tails-backup commands run it through sudo"))

// runHelper is `tails-backup helper`: the root helper, run by the session agent through sudo.
// It takes no arguments, reads one request line on standard input and writes event lines on
// standard output; see package helper.
func runHelper(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		writeHelperError(env, wire.CodeInvalidRequest, wire.ReasonHelperArgs, errHelperArgs.Error()+".")
		// The session words the event; a person at a terminal reads this.
		return errors.New(env.loc.Tr(errHelperArgs.Error()))
	}
	if env.stdinTerminal {
		// A person typed it: the agent and the commands write the request through a pipe.
		fmt.Fprintf(env.stderr, "tails-backup helper: %s.\n", env.loc.Tr(errHelperByHand.Error()))
		return reportedError{err: errHelperByHand, code: 2}
	}
	// First of all, before the request: the resource limits, dumpability and stop signals that
	// sudo hands over from the caller, who may be hostile (see helper.ResetProcess).
	if err := helper.ResetProcess(); err != nil {
		if errors.Is(err, helper.ErrLimit) {
			writeHelperError(env, wire.CodeRefused, wire.ReasonLimitNotLifted, fmt.Sprintf("The tails-backup helper was started with a resource limit it cannot lift (%s), so it does nothing; run it through its sudo rule, as root.", err))
		} else {
			writeHelperError(env, wire.CodeInternal, wire.ReasonProcessSetup, fmt.Sprintf("The tails-backup helper cannot set up its process (%s); restart Tails and try again.", err))
		}
		return err
	}
	// sudo relays SIGTERM, SIGINT and SIGHUP; main already turns the first two into ctx's end.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	// A write to a closed standard output must fail with EPIPE, which cancels the operation,
	// instead of killing the process in the middle of it.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)

	l := logrus.New()
	l.SetOutput(env.stderr)
	log := logrus.NewEntry(l).WithField("cmd", "helper")

	bus := &systemBus{log: log}
	defer bus.close()
	err := helper.Run(ctx, env.stdin, env.stdout, helper.System{UDisks: bus}, log)
	if err != nil {
		// Already said twice: in the error event and in the log.
		return reportedError{err: err, code: 1}
	}
	return nil
}

// writeHelperError writes an error event when helper.Run cannot (refused command line): the
// session words reason in its language, msg is English, for the log.
func writeHelperError(env *environment, code wire.ErrorCode, reason wire.Reason, msg string) {
	b, _ := json.Marshal(wire.Event{Event: wire.EventError, Code: code, Reason: reason, Message: msg})
	_, _ = env.stdout.Write(append(b, '\n'))
}

// systemBus connects to udisks on the system bus on first use: DBUS_SYSTEM_BUS_ADDRESS, else
// the default socket; but when run through sudo, always the default socket, since a session
// that could choose the bus could put a fake udisks2 in front of the root helper.

// defaultSystemBus is the system bus of every systemd machine.
const defaultSystemBus = "unix:path=/run/dbus/system_bus_socket"

type systemBus struct {
	log    *logrus.Entry
	mu     gosync.Mutex
	conn   *dbus.Conn
	client *udisks.Client
}

func (b *systemBus) GetSnapshot(ctx context.Context) (*udisks.Snapshot, error) {
	c, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	return c.GetSnapshot(ctx)
}

// UnlockWithKey unlocks the LUKS block at luks with key (the helper's unlock-with-key).
func (b *systemBus) UnlockWithKey(ctx context.Context, luks dbus.ObjectPath, key []byte) (dbus.ObjectPath, error) {
	c, err := b.connect(ctx)
	if err != nil {
		return "", err
	}
	return c.UnlockWithKey(ctx, luks, key)
}

// MountAs mounts fs on behalf of user (unlock-with-key, udisks2 ≥ 2.10).
func (b *systemBus) MountAs(ctx context.Context, fs dbus.ObjectPath, user string) (string, error) {
	c, err := b.connect(ctx)
	if err != nil {
		return "", err
	}
	return c.MountAs(ctx, fs, user)
}

// Mount mounts fs as root (unlock-with-key, older udisks2).
func (b *systemBus) Mount(ctx context.Context, fs dbus.ObjectPath) (string, error) {
	c, err := b.connect(ctx)
	if err != nil {
		return "", err
	}
	return c.Mount(ctx, fs)
}

// Unmount unmounts fs (lock-backup).
func (b *systemBus) Unmount(ctx context.Context, fs dbus.ObjectPath) error {
	c, err := b.connect(ctx)
	if err != nil {
		return err
	}
	return c.Unmount(ctx, fs)
}

// Lock locks the LUKS block at luks (lock-backup).
func (b *systemBus) Lock(ctx context.Context, luks dbus.ObjectPath) error {
	c, err := b.connect(ctx)
	if err != nil {
		return err
	}
	return c.Lock(ctx, luks)
}

// connect returns the udisks client, connecting to the system bus the first time.
func (b *systemBus) connect(ctx context.Context) (*udisks.Client, error) {
	b.mu.Lock()
	if b.client == nil {
		var conn *dbus.Conn
		var err error
		// dbus.WithContext closes the connection when its context ends: the connection
		// outlives the call that makes it (a snapshot with its own deadline, then the unlock
		// of unlock-with-key, seen failing in the VM with "connection closed by user"); close
		// ends it.
		life := context.WithoutCancel(ctx)
		if os.Getenv("SUDO_UID") != "" {
			conn, err = dbus.Connect(defaultSystemBus, dbus.WithContext(life))
		} else {
			conn, err = dbus.ConnectSystemBus(dbus.WithContext(life))
		}
		if err != nil {
			b.mu.Unlock()
			return nil, fmt.Errorf("connect to the system bus: %w", err)
		}
		b.conn = conn
		b.client = udisks.New(conn, udisks.Options{Log: b.log})
	}
	c := b.client
	b.mu.Unlock()
	return c, nil
}

func (b *systemBus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.Close()
	}
}

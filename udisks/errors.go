package udisks

import (
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// Sentinel errors; test with errors.Is. The *Error that carries them also unwraps to
// the original *dbus.Error (errors.As) when udisks replied with one.
var (
	// ErrWrongPassphrase: the passphrase does not open any key slot.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrNotAuthorized: polkit (or the bus policy) refused the action.
	ErrNotAuthorized = errors.New("not authorized")
	// ErrBusy: the device is in use (open files, mounted, held by another process).
	ErrBusy = errors.New("device busy")
	// ErrAlreadyUnlocked: the LUKS device is already unlocked; reuse its cleartext
	// device (see Client.UnlockOrReuse and Snapshot.Cleartext).
	ErrAlreadyUnlocked = errors.New("already unlocked")
	// ErrAlreadyMounted: the filesystem is already mounted (see Filesystem.MountPoints).
	ErrAlreadyMounted = errors.New("already mounted")
	// ErrNotMounted: the filesystem is not mounted.
	ErrNotMounted = errors.New("not mounted")
	// ErrDeviceGone: the object disappeared (unplugged) before or during the call.
	ErrDeviceGone = errors.New("device gone")
	// ErrUnavailable: udisks2 is not on the bus (not installed, crashed, restarting).
	ErrUnavailable = errors.New("udisks2 unavailable")
	// ErrNotFound: a query found no object of the kind asked for.
	ErrNotFound = errors.New("not found")
)

// D-Bus error names.
const (
	errUDisks         = "org.freedesktop.UDisks2.Error."
	errFailed         = errUDisks + "Failed"
	errNotAuthorized  = errUDisks + "NotAuthorized" // also ...CanObtain, ...Dismissed
	errDeviceBusy     = errUDisks + "DeviceBusy"
	errAlreadyMounted = errUDisks + "AlreadyMounted"
	errNotMounted     = errUDisks + "NotMounted"
	errUnknownObject  = "org.freedesktop.DBus.Error.UnknownObject"
	errUnknownMethod  = "org.freedesktop.DBus.Error.UnknownMethod"
	errUnknownIface   = "org.freedesktop.DBus.Error.UnknownInterface"
	errServiceUnknown = "org.freedesktop.DBus.Error.ServiceUnknown"
	errNameHasNoOwner = "org.freedesktop.DBus.Error.NameHasNoOwner"
	errAccessDenied   = "org.freedesktop.DBus.Error.AccessDenied"
	errInteractive    = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
	errPolkitPrefix   = "org.freedesktop.PolicyKit1.Error."
	errNoReply        = "org.freedesktop.DBus.Error.NoReply"
	errDisconnected   = "org.freedesktop.DBus.Error.Disconnected"
)

// Error is a failed udisks operation. Kind is one of the sentinels above (or nil when
// the failure has no specific meaning); DBus is udisks' reply, if any.
type Error struct {
	Op   string          // what was tried, e.g. "unlock"
	Path dbus.ObjectPath // the object it was tried on
	Kind error
	DBus *dbus.Error
	Err  error // underlying non-D-Bus error (context, I/O), if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Path != "" {
		b.WriteString(" ")
		b.WriteString(string(e.Path))
	}
	b.WriteString(": ")
	switch {
	case e.Kind != nil && e.DBus != nil:
		fmt.Fprintf(&b, "%v (%s: %s)", e.Kind, e.DBus.Name, dbusMessage(e.DBus))
	case e.DBus != nil:
		fmt.Fprintf(&b, "%s: %s", e.DBus.Name, dbusMessage(e.DBus))
	case e.Kind != nil && e.Err != nil:
		fmt.Fprintf(&b, "%v: %v", e.Kind, e.Err)
	case e.Kind != nil:
		b.WriteString(e.Kind.Error())
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap gives errors.Is/As access to Kind, the *dbus.Error and Err.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.DBus != nil {
		out = append(out, e.DBus)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

func dbusMessage(e *dbus.Error) string {
	if len(e.Body) > 0 {
		if s, ok := e.Body[0].(string); ok {
			return s
		}
	}
	return ""
}

// Texts by which udisks/libblockdev/cryptsetup have reported a wrong passphrase:
//   - libblockdev >= 2.21 (Debian 12): "Error unlocking /dev/sda2: Failed to activate device: Incorrect passphrase."
//   - libblockdev < 2.21 (crypt_activate_by_passphrase's -EPERM through strerror):
//     "Error unlocking /dev/sdb1: Failed to activate device: Operation not permitted"
//   - udisks < 2.7 running the cryptsetup binary: "... No key available with this passphrase."
//   - newer libblockdev/udisks variants: "Incorrect passphrase", "wrong passphrase", "Invalid passphrase".
//
// "Operation not permitted" only means a wrong passphrase in answer to Unlock.
var wrongPassphraseTexts = []string{
	"incorrect passphrase",
	"no key available with this passphrase",
	"wrong passphrase",
	"invalid passphrase",
	"failed to activate device: operation not permitted",
}

var busyTexts = []string{
	"target is busy",
	"device or resource busy",
	"device is busy",
	"is in use",
}

// classify maps err (from a D-Bus call) to an *Error with a Kind.
func classify(op string, path dbus.ObjectPath, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Path: path}
	var de dbus.Error
	var dep *dbus.Error
	switch {
	case errors.As(err, &dep):
		e.DBus = dep
	case errors.As(err, &de):
		e.DBus = &de
	default:
		e.Err = err
		if errors.Is(err, dbus.ErrClosed) {
			e.Kind = ErrUnavailable
		}
		return e
	}
	e.Kind = kindOf(op, e.DBus)
	return e
}

func kindOf(op string, de *dbus.Error) error {
	name := de.Name
	msg := strings.ToLower(dbusMessage(de))
	switch {
	case strings.HasPrefix(name, errNotAuthorized), strings.HasPrefix(name, errPolkitPrefix),
		name == errAccessDenied, name == errInteractive:
		return ErrNotAuthorized
	case name == errDeviceBusy:
		return ErrBusy
	case name == errAlreadyMounted:
		return ErrAlreadyMounted
	case name == errNotMounted:
		return ErrNotMounted
	case name == errUnknownObject, name == errUnknownMethod, name == errUnknownIface:
		return ErrDeviceGone
	case name == errServiceUnknown, name == errNameHasNoOwner, name == errDisconnected, name == errNoReply:
		return ErrUnavailable
	}
	if name != errFailed && !strings.HasPrefix(name, errUDisks) {
		return nil
	}
	if op == opUnlock {
		for _, t := range wrongPassphraseTexts {
			if strings.Contains(msg, t) {
				return ErrWrongPassphrase
			}
		}
	}
	switch {
	case strings.Contains(msg, "is already unlocked"):
		return ErrAlreadyUnlocked
	case strings.Contains(msg, "is already mounted"):
		return ErrAlreadyMounted
	case strings.Contains(msg, "is not mounted"):
		return ErrNotMounted
	case strings.Contains(msg, "error checking authorization"), strings.Contains(msg, "not authorized"):
		return ErrNotAuthorized
	}
	for _, t := range busyTexts {
		if strings.Contains(msg, t) {
			return ErrBusy
		}
	}
	if strings.Contains(msg, "no such device") || strings.Contains(msg, "no such file or directory") &&
		strings.Contains(msg, "/dev/") {
		return ErrDeviceGone
	}
	return nil
}

// Operation names used in errors.
const (
	opUnlock   = "unlock"
	opLock     = "lock"
	opMount    = "mount"
	opUnmount  = "unmount"
	opPowerOff = "power off"
	opFormat   = "format"
	opCreate   = "create partition"
	opSetFlags = "set partition flags"
	opLoop     = "set up loop device"
	opLoopDel  = "delete loop device"
)

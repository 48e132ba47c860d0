package udisks

import (
	"errors"
	"fmt"
	"testing"

	"github.com/godbus/dbus/v5"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		op, name, msg string
		want          error
	}{
		{opUnlock, errFailed, "Error unlocking /dev/sda2: Failed to activate device: Incorrect passphrase.", ErrWrongPassphrase},
		{opUnlock, errFailed, "Error unlocking /dev/sdb1: Failed to activate device: Operation not permitted", ErrWrongPassphrase},
		{opUnlock, errFailed, "Error unlocking /dev/sdb1: Command-line `cryptsetup luksOpen \"/dev/sdb1\" \"luks-x\" ' exited with non-zero exit status 2: No key available with this passphrase.", ErrWrongPassphrase},
		{opUnlock, errFailed, "Device /dev/sdb2 is already unlocked as /dev/dm-0", ErrAlreadyUnlocked},
		{opUnlock, errNotAuthorized + "CanObtain", "Not authorized to perform operation", ErrNotAuthorized},
		{opUnlock, "org.freedesktop.PolicyKit1.Error.Failed", "x", ErrNotAuthorized},
		{opMount, errAccessDenied, "Rejected send message", ErrNotAuthorized},
		{opMount, errFailed, "Error mounting /dev/sdb1 at /m: Operation not permitted", nil},
		{opMount, errFailed, "Device /dev/loop7 is already mounted at `/media/root/x'.", ErrAlreadyMounted},
		{opMount, errAlreadyMounted, "Device /dev/loop7 is already mounted at `/media/root/x'.", ErrAlreadyMounted},
		{opUnmount, errNotMounted, "Device `/dev/loop7' is not mounted", ErrNotMounted},
		{opUnmount, errFailed, "Error unmounting /dev/sdb1: target is busy", ErrBusy},
		{opUnmount, errDeviceBusy, "Error unmounting /dev/sdb1: target is busy", ErrBusy},
		{opLock, errFailed, "Error locking /dev/sdb2 (/dev/dm-0): Failed to deactivate device: Device or resource busy", ErrBusy},
		{opLock, errUnknownObject, "No such object", ErrDeviceGone},
		{opLock, errUnknownMethod, "No such interface", ErrDeviceGone},
		{opLock, errServiceUnknown, "The name is not activatable", ErrUnavailable},
		{opLock, "org.example.Other", "Incorrect passphrase", nil},
	} {
		err := classify(c.op, "/o", dbus.Error{Name: c.name, Body: []any{c.msg}})
		var ue *Error
		if !errors.As(err, &ue) {
			t.Fatalf("%T", err)
		}
		if ue.Kind != c.want {
			t.Errorf("%s %s %q: kind %v, want %v", c.op, c.name, c.msg, ue.Kind, c.want)
		}
		var de *dbus.Error
		if !errors.As(err, &de) || de.Name != c.name {
			t.Errorf("%s: D-Bus error not kept", c.name)
		}
		wrapped := fmt.Errorf("update backup: %w", err)
		if c.want != nil && !errors.Is(wrapped, c.want) {
			t.Errorf("%s: errors.Is through wrapping failed", c.name)
		}
	}
	if err := classify("x", "", dbus.ErrClosed); !errors.Is(err, ErrUnavailable) || !errors.Is(err, dbus.ErrClosed) {
		t.Errorf("closed connection: %v", err)
	}
}

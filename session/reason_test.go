package session

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReason(t *testing.T) {
	_, openErr := os.Open(filepath.Join(t.TempDir(), "missing"))
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"a real open", openErr, "no such file or directory"},
		{"path error", &fs.PathError{Op: "lstat", Path: "/x", Err: syscall.ENOENT}, "no such file or directory"},
		{"wrapped path error", fmt.Errorf("source /x: %w", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}), "permission denied"},
		{"syscall error", os.NewSyscallError("statfs", syscall.EIO), "input/output error"},
		{"link error", &os.LinkError{Op: "rename", Old: "/a", New: "/b", Err: syscall.EXDEV}, "invalid cross-device link"},
		{"path error around a syscall error", &fs.PathError{Op: "open", Path: "/x", Err: os.NewSyscallError("openat2", syscall.ELOOP)}, "too many levels of symbolic links"},
		{"other errors are said as they are", errors.New("udisks gives no mount point"), "udisks gives no mount point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reason(tt.err); got != tt.want {
				t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

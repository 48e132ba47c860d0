//go:build !linux

package sync

import (
	"context"
	"errors"
)

// Mirror needs Linux: it relies on openat2, O_PATH descriptors and /proc/self/fd.
func Mirror(ctx context.Context, src, dst string, opts Options) (Report, error) {
	return Report{}, errors.New("mirror: only Linux is supported")
}

// MirrorFDs needs Linux, as Mirror does.
func MirrorFDs(ctx context.Context, srcDir, dstDir int, opts Options) (Report, error) {
	return Report{}, errors.New("mirror: only Linux is supported")
}

//go:build !linux

package helper

import (
	"context"

	"github.com/sirupsen/logrus"

	"tails-backup/wire"
)

// operation is one validated request being served; the helper needs Linux (openat2, statx,
// /proc/self/mountinfo).
type operation struct {
	ctx context.Context
	sys System
	req wire.Request
	log *logrus.Entry
	out *eventWriter

	secret *wire.Secret
}

func (o *operation) run() (*wire.Report, *Failure) {
	return nil, failf(wire.CodeInternal, wire.ReasonNotLinux, wire.Args{}, nil, "The tails-backup helper only runs on Linux; use it on Tails.")
}

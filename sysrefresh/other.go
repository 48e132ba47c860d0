//go:build !linux

package sysrefresh

import (
	"context"
	"errors"
)

var errUnsupported = errors.New("sysrefresh: only supported on Linux")

// Plan is only supported on Linux.
func Plan(string, string, Options) (Changes, error) { return Changes{}, errUnsupported }

// Refresh is only supported on Linux.
func Refresh(context.Context, string, string, Options) (Report, error) {
	return Report{}, errUnsupported
}

// PlanFDs is only supported on Linux.
func PlanFDs(int, int, Options) (Changes, error) { return Changes{}, errUnsupported }

// RefreshFDs is only supported on Linux.
func RefreshFDs(context.Context, int, int, Options) (Report, error) {
	return Report{}, errUnsupported
}

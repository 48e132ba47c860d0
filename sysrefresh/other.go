//go:build !linux

package sysrefresh

import (
	"context"
	"errors"
)

var errUnsupported = errors.New("sysrefresh: only supported on Linux")

// ReadVersion is only supported on Linux.
func ReadVersion(string) (string, error) { return "", errUnsupported }

// Plan is only supported on Linux.
func Plan(string, string, Options) (Changes, error) { return Changes{}, errUnsupported }

// Refresh is only supported on Linux.
func Refresh(context.Context, string, string, Options) (Report, error) {
	return Report{}, errUnsupported
}

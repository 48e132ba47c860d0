//go:build !linux

package sysident

import "errors"

var errUnsupported = errors.New("sysident: only supported on Linux")

// ReadVersion is only supported on Linux.
func ReadVersion(string) (string, error) { return "", errUnsupported }

// ReadVersionOpts is only supported on Linux.
func ReadVersionOpts(string, Options) (string, error) { return "", errUnsupported }

// ReadVersionFD is only supported on Linux.
func ReadVersionFD(int, Options) (string, error) { return "", errUnsupported }

// Identify is only supported on Linux.
func Identify(string, Options) (Identity, error) { return Identity{}, errUnsupported }

// IdentifyFD is only supported on Linux.
func IdentifyFD(int, Options) (Identity, error) { return Identity{}, errUnsupported }

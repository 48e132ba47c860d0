//go:build !linux

package helper

// ResetProcess does nothing: the helper only runs on Linux (see operation.run).
func ResetProcess() error { return nil }

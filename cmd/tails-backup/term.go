package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal tells whether f is a terminal, where progress can redraw one line.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Package helper is the root side of tails-backup: it validates one request from the session,
// re-derives the source and the destination from the system itself, and runs the mirror.
//
// It speaks the protocol of package wire: one Request on its standard input, Event lines on
// its standard output.
package helper

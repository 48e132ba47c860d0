//go:build race

package main

// raceEnabled: the race detector reserves terabytes of address space at start, so a child
// started under a lowered RLIMIT_AS dies before it runs anything.
const raceEnabled = true

//go:build race

package helper

// raceEnabled: the race detector reserves terabytes of address space at start, so a child
// started under a lowered RLIMIT_AS dies before it runs anything.
const raceEnabled = true

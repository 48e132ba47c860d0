// Package session holds the flows of the unprivileged side once (the sticks and their
// eligibility, opening a stick, the texts of each outcome), so that the agent and every command
// call the same code; it never imports the root helper's packages.
package session

// Package dbusapi serves the session agent's API for the Backup app on the session bus
// (org.boum.tails.Backup1, docs/dbus-api.md) over a Backend, and is its Go client.
//
// The app's tests run against the fake backend of dbusapi/dbusapitest, served on the current
// session bus by a small program:
//
//	go run ./dbusapi/dbusapitest/cmd/fakebackupd -scenario first-run
//
// Scenarios: first-run, paired, plugged, updating, failed, paused, backup, no-persistence
// (fakebackupd -h says what each shows); -step sets the pace of the fake jobs. It prints
// "ready" on standard output once it owns the name, and stops on SIGINT or SIGTERM.
package dbusapi

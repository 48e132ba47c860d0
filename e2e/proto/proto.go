// Package proto is the wire format of the control channel between the end-to-end test driver
// (on the host) and its agent in the guest (e2e/guest serve): one JSON object per line, in both
// directions, over a virtio serial port. Requests carry an ID; the answers may come in any order.
package proto

import "time"

// PortName is the name of the virtio serial port (/dev/virtio-ports/PortName in the guest).
const PortName = "e2e.ctl"

// Request runs one command in the guest.
type Request struct {
	ID   uint64   `json:"id"`
	Argv []string `json:"argv"`
	// User is the account to run as: "" or "root", or "amnesia", who then gets the
	// environment of its desktop session (XDG_RUNTIME_DIR, its session bus).
	User  string   `json:"user,omitempty"`
	Env   []string `json:"env,omitempty"` // added to the default environment
	Stdin []byte   `json:"stdin,omitempty"`
	Dir   string   `json:"dir,omitempty"`
	// Timeout kills the command after this long (0: 10 minutes).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Background starts the command and answers at once with its PID; its output is dropped.
	Background bool `json:"background,omitempty"`
}

// Response is the outcome of a Request.
type Response struct {
	ID     uint64 `json:"id"`
	Stdout []byte `json:"stdout,omitempty"`
	Stderr []byte `json:"stderr,omitempty"`
	// Exit is the exit status (-1 when killed by a signal or not started).
	Exit int `json:"exit"`
	// Error says why the command could not run or was killed ("" otherwise).
	Error string `json:"error,omitempty"`
	PID   int    `json:"pid,omitempty"`
}

// Notification is one notification recorded by the guest's notification server.
type Notification struct {
	Seq      int               `json:"seq"` // 1, 2, ... in the order received
	ID       uint32            `json:"id"`
	Replaces uint32            `json:"replaces,omitempty"`
	App      string            `json:"app"`
	Summary  string            `json:"summary"`
	Body     string            `json:"body"`
	Actions  []string          `json:"actions,omitempty"` // (key, label) pairs, as sent
	Hints    map[string]string `json:"hints,omitempty"`
	Time     time.Time         `json:"time"` // guest clock
	// Open is false once the notification was closed (by the application or a click).
	Open bool `json:"open"`
}

// ActionKeys returns the keys of the actions.
func (n Notification) ActionKeys() []string {
	var keys []string
	for i := 0; i+1 < len(n.Actions); i += 2 {
		keys = append(keys, n.Actions[i])
	}
	return keys
}

// TreeCheck is what e2e-guest check-tree found on a backup, against the source's manifests before (old)
// and after (new) the changes.
type TreeCheck struct {
	Entries   int      `json:"entries"`   // entries of the backup compared
	Files     int      `json:"files"`     // regular files among them
	Unchanged int      `json:"unchanged"` // the same in old and new, and so on the backup
	Old       int      `json:"old"`       // changed by the week, still old on the backup
	New       int      `json:"new"`       // changed by the week, already new on the backup
	Torn      []string `json:"torn"`      // neither old nor new: the failure this check is for
	TornWhat  []string `json:"torn_what"` // what each torn entry is, and was before and after
	Missing   []string `json:"missing"`   // in old and in new, not on the backup: lost
	Extra     []string `json:"extra"`     // on the backup, in neither old nor new
	Temps     []string `json:"temps"`     // temporaries of the engine left behind
	Marker    string   `json:"marker"`    // state in the backup's marker, "" if unreadable
	Complete  bool     `json:"complete"`  // the backup equals new exactly
}

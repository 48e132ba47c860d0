package tails

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// MarkerName is the file, at the root of a backup's Persistent Storage, that says it is a
// backup, of which Tails, and how its last update went. The mirror never deletes it.
const MarkerName = ".tails-backup.json"

// MarkerMode is the mode of the marker: root-owned, readable by the session user.
const MarkerMode = 0o644

// MarkerFormat is the version of the marker format written by this code.
const MarkerFormat = 1

// UpdateState says whether the last update of a backup ran to its end.
type UpdateState string

const (
	// StateComplete means the backup is an exact copy as of Marker.Finished.
	StateComplete UpdateState = "complete"
	// StateIncomplete means an update started and did not finish: the next one completes it.
	StateIncomplete UpdateState = "incomplete"
)

// Marker is the content of MarkerName.
type Marker struct {
	Format int `json:"format"`
	// Source is the LUKS UUID of the Persistent Storage this is a backup of.
	Source string `json:"source"`
	// State of the last update.
	State UpdateState `json:"state"`
	// Started is when the last update started.
	Started time.Time `json:"started"`
	// Finished is when the last complete update ended; zero if none has.
	Finished time.Time `json:"finished,omitzero"`
	// TailsVersion is the version of the Tails that was copied.
	TailsVersion string `json:"tails_version,omitempty"`
}

// ErrMarkerFormat is returned for a marker written by a newer, unknown version of tails-backup.
var ErrMarkerFormat = errors.New("the backup marker was written by a newer tails-backup; update tails-backup")

// maxMarkerSize bounds what is read: a marker is a few hundred bytes, and a hostile stick may
// offer anything.
const maxMarkerSize = 64 << 10

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ValidUUID tells whether s is a LUKS UUID in canonical lower-case form.
func ValidUUID(s string) bool { return uuidPattern.MatchString(s) }

// ParseMarker reads a marker and validates it. The input comes from a stick that may be hostile.
func ParseMarker(r io.Reader) (Marker, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxMarkerSize+1))
	if err != nil {
		return Marker{}, fmt.Errorf("read the backup marker: %w", err)
	}
	if len(data) > maxMarkerSize {
		return Marker{}, errors.New("the backup marker is larger than 64 KiB, so it is not one of ours")
	}
	var m Marker
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return Marker{}, fmt.Errorf("the backup marker is not valid JSON: %w", err)
	}
	if dec.More() {
		return Marker{}, errors.New("the backup marker has data after its JSON object")
	}
	if m.Format > MarkerFormat {
		return Marker{}, ErrMarkerFormat
	}
	if err := m.Validate(); err != nil {
		return Marker{}, err
	}
	return m, nil
}

// Validate checks the fields of a marker.
func (m Marker) Validate() error {
	switch {
	case m.Format < 1:
		return fmt.Errorf("the backup marker has format %d, want 1 to %d", m.Format, MarkerFormat)
	case !ValidUUID(m.Source):
		return fmt.Errorf("the backup marker names source %q, which is not a LUKS UUID", m.Source)
	case m.State != StateComplete && m.State != StateIncomplete:
		return fmt.Errorf("the backup marker has state %q, want complete or incomplete", m.State)
	case m.Started.IsZero():
		return errors.New("the backup marker has no start time")
	case m.State == StateComplete && m.Finished.IsZero():
		return errors.New("the backup marker says complete but has no finish time")
	case len(m.TailsVersion) > 64:
		return errors.New("the backup marker's Tails version is longer than 64 bytes")
	}
	return nil
}

// Marshal encodes a valid marker.
func (m Marker) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

package tails

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// Binding is one line of persistence.conf: a folder of the Persistent Storage made available
// at a path of the running system.
type Binding struct {
	// Destination is the absolute path where the folder appears, e.g. /home/amnesia/Persistent.
	Destination string
	// Source is the folder relative to the Persistent Storage root, e.g. "Persistent"; by
	// default it is the destination without its leading slash, as live-boot does.
	Source string
	// Link means each file of the folder is symlinked into the destination (dotfiles).
	Link bool
	// File means the binding is a single file.
	File bool
	// Options are all the options of the line, in order, including unknown ones.
	Options []string
}

// ConfError is a persistence.conf line that cannot be understood.
type ConfError struct {
	Line   int
	Reason string
}

func (e *ConfError) Error() string {
	return fmt.Sprintf("persistence.conf line %d: %s; fix or remove that line in the Persistent Storage settings", e.Line, e.Reason)
}

// maxConfSize bounds what is read of persistence.conf: Tails writes a few hundred bytes.
const maxConfSize = 1 << 20

// ParsePersistenceConf parses persistence.conf. Blank lines and lines starting with # are
// ignored; every other line is "DESTINATION<whitespace>OPTIONS", OPTIONS a comma-separated list
// such as "source=Persistent" or "source=dotfiles,link". It returns a *ConfError for the first
// line that is malformed or unsafe (a relative destination, a source leaving the root).
func ParsePersistenceConf(r io.Reader) ([]Binding, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfSize+1))
	if err != nil {
		return nil, fmt.Errorf("read persistence.conf: %w", err)
	}
	if len(data) > maxConfSize {
		return nil, &ConfError{Line: 0, Reason: "the file is larger than 1 MiB"}
	}
	var out []Binding
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), maxConfSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := parseBinding(line)
		if err != nil {
			return nil, &ConfError{Line: n, Reason: err.Error()}
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read persistence.conf: %w", err)
	}
	return out, nil
}

func parseBinding(line string) (Binding, error) {
	if strings.ContainsRune(line, 0) {
		return Binding{}, fmt.Errorf("it contains a NUL byte")
	}
	fields := strings.Fields(line)
	if len(fields) > 2 {
		return Binding{}, fmt.Errorf("expected a destination and options, found %d fields", len(fields))
	}
	b := Binding{Destination: fields[0]}
	if !path.IsAbs(b.Destination) || path.Clean(b.Destination) != b.Destination || b.Destination == "/" {
		return Binding{}, fmt.Errorf("destination %q is not a clean absolute path", b.Destination)
	}
	b.Source = strings.TrimPrefix(b.Destination, "/")
	if len(fields) == 2 {
		b.Options = strings.Split(fields[1], ",")
	}
	for _, o := range b.Options {
		switch {
		case o == "link":
			b.Link = true
		case o == "file":
			b.File = true
		case strings.HasPrefix(o, "source="):
			b.Source = strings.TrimPrefix(o, "source=")
		case o == "":
			return Binding{}, fmt.Errorf("empty option")
		}
	}
	if !validSource(b.Source) {
		return Binding{}, fmt.Errorf("source %q is not a folder inside the Persistent Storage", b.Source)
	}
	return b, nil
}

// validSource accepts relative paths that stay inside the root.
func validSource(s string) bool {
	return s != "" && !path.IsAbs(s) && path.Clean(s) == s && s != "." && s != ".." &&
		!strings.HasPrefix(s, "../")
}

// Sources returns the set of top-level Persistent Storage folders the bindings use.
func Sources(bs []Binding) map[string]bool {
	out := make(map[string]bool, len(bs))
	for _, b := range bs {
		top, _, _ := strings.Cut(b.Source, "/")
		out[top] = true
	}
	return out
}

package helper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"tails-backup/tails"
	"tails-backup/udisks"
)

// UDisks is what the helper asks udisks2: one consistent view of the block devices.
// *udisks.Client implements it.
type UDisks interface {
	GetSnapshot(ctx context.Context) (*udisks.Snapshot, error)
}

var _ UDisks = (*udisks.Client)(nil)

// System is the part of the machine the helper reads to re-derive the source and the
// destination. Blank fields take the production values, so only UDisks is required.
type System struct {
	// UDisks is a client of the udisks2 service on the system bus (a fake on a private bus in
	// tests).
	UDisks UDisks
	// MountInfo is the mount table to read; default /proc/self/mountinfo.
	MountInfo string
	// Source is where the Persistent Storage of the running Tails is mounted; default
	// tails.PersistentStorageMount.
	Source string
	// SystemMount is where the running system partition is mounted; default tails.MediumMount.
	// With Source it locates the boot drive.
	SystemMount string
	// VersionFile holds the running Tails' version; default tails.VersionFile.
	VersionFile string
	// Now is the clock of the marker's times; default time.Now.
	Now func() time.Time
	// Euid returns the effective user ID; default os.Geteuid.
	Euid func() int
	// RequestTimeout bounds the wait for the request line; default one minute.
	RequestTimeout time.Duration
	// ProgressInterval is the minimum time between two progress events; default 200ms.
	ProgressInterval time.Duration
}

// DefaultMountInfo is the mount table of the helper's own mount namespace.
const DefaultMountInfo = "/proc/self/mountinfo"

func (s System) withDefaults() System {
	if s.MountInfo == "" {
		s.MountInfo = DefaultMountInfo
	}
	if s.Source == "" {
		s.Source = tails.PersistentStorageMount
	}
	if s.SystemMount == "" {
		s.SystemMount = tails.MediumMount
	}
	if s.VersionFile == "" {
		s.VersionFile = tails.VersionFile
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Euid == nil {
		s.Euid = os.Geteuid
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = time.Minute
	}
	if s.ProgressInterval <= 0 {
		s.ProgressInterval = 200 * time.Millisecond
	}
	return s
}

// bootPaths are the mount points that tell the boot drive, with symlinks resolved (udisks
// reports canonical mount points).
func (s System) bootPaths() udisks.BootPaths {
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	return udisks.BootPaths{Persistence: resolve(s.Source), System: resolve(s.SystemMount)}
}

func (s System) mounts() ([]Mount, error) {
	f, err := os.Open(s.MountInfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseMountInfo(f)
}

// maxVersionLength is what a marker accepts for the Tails version.
const maxVersionLength = 64

// ReadTailsVersion returns the version of the running Tails: the first word of the first line
// of path ("6.10 - 20241203" gives "6.10"). A missing or unreadable file, or a first word that
// does not look like a version, gives "" (not an error: the system may not be Tails).
func ReadTailsVersion(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, 4096), 4096).ReadString('\n')
	if err != nil && line == "" {
		return ""
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return ""
	}
	v := fields[0]
	if len(v) > maxVersionLength {
		return ""
	}
	for _, r := range v {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-~+_", r)) {
			return ""
		}
	}
	return v
}

// Failure is the reason an operation did not happen (or did not finish): what the helper
// reports in its "error" event and returns from Run.
type Failure struct {
	Code ErrorCode
	// Message is one sentence for the user: what is wrong and what to do.
	Message string
	// Needed and Available are set with CodeNoSpace.
	Needed, Available int64
	// Err is the underlying error, for the log; it is not sent to the session.
	Err error
}

func (f *Failure) Error() string { return f.Message }

func (f *Failure) Unwrap() error { return f.Err }

func failf(code ErrorCode, err error, format string, args ...any) *Failure {
	return &Failure{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

func (f *Failure) event() Event {
	return Event{Event: EventError, Code: f.Code, Message: f.Message, Needed: f.Needed, Available: f.Available}
}

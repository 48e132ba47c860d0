package helper

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/godbus/dbus/v5"

	"tails-backup/internal/dmcrypt"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// UDisks is what the helper asks udisks2: one consistent view of the block devices.
// *udisks.Client implements it.
type UDisks interface {
	GetSnapshot(ctx context.Context) (*udisks.Snapshot, error)
	// UnlockWithKey unlocks the LUKS block at luks with key as udisks2's keyfile_contents and
	// returns its cleartext block (unlock-with-key).
	UnlockWithKey(ctx context.Context, luks dbus.ObjectPath, key []byte) (dbus.ObjectPath, error)
	// MountAs mounts the file system at fs on behalf of user (udisks2 ≥ 2.10's as-user),
	// Mount as the caller, root (unlock-with-key).
	MountAs(ctx context.Context, fs dbus.ObjectPath, user string) (string, error)
	Mount(ctx context.Context, fs dbus.ObjectPath) (string, error)
	// Unmount and Lock undo them (lock-backup).
	Unmount(ctx context.Context, fs dbus.ObjectPath) error
	Lock(ctx context.Context, luks dbus.ObjectPath) error
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
	// ProgramPath is the PATH of the programs install-bootloader runs (syslinux when the
	// running system partition has none, and the mtools it calls); default DefaultProgramPath.
	ProgramPath string
	// GPTMBR is the GPT MBR boot code install-bootloader writes when the running system
	// partition has none in utils/mbr/mbr.bin; default DefaultGPTMBR.
	GPTMBR string
	// RunCommand runs argv with the environment env to its end and returns its combined
	// output; default runs the program (tests record what is run with a fake program).
	RunCommand func(ctx context.Context, argv, env []string) ([]byte, error)
	// Sysfs is where sysfs is mounted (the device-mapper devices lock-backup looks at);
	// default dmcrypt.DefaultSysfs.
	Sysfs string
}

// Defaults of System's bootloader settings (Debian's syslinux-common and a root PATH).
const (
	DefaultProgramPath = "/usr/sbin:/usr/bin:/sbin:/bin"
	DefaultGPTMBR      = "/usr/lib/syslinux/mbr/gptmbr.bin"
)

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
	if s.ProgramPath == "" {
		s.ProgramPath = DefaultProgramPath
	}
	if s.GPTMBR == "" {
		s.GPTMBR = DefaultGPTMBR
	}
	if s.RunCommand == nil {
		s.RunCommand = runCommand
	}
	if s.Sysfs == "" {
		s.Sysfs = dmcrypt.DefaultSysfs
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

// maxCommandOutput bounds what is kept of a program's output.
const maxCommandOutput = 64 << 10

// runCommand runs argv with exactly the environment env and standard input from /dev/null.
func runCommand(ctx context.Context, argv, env []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var out bytes.Buffer
	w := &limitedWriter{w: &out, n: maxCommandOutput}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	return out.Bytes(), err
}

// limitedWriter keeps the first n bytes written and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if keep := min(len(p), l.n); keep > 0 {
		_, _ = l.w.Write(p[:keep])
		l.n -= keep
	}
	return len(p), nil
}

func (s System) mounts() ([]tails.Mount, error) {
	f, err := os.Open(s.MountInfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return tails.ParseMountInfo(f)
}

// maxVersionLength is what a marker accepts for the Tails version.
const maxVersionLength = 64

// ReadTailsVersion returns the version of the running Tails: the first word of the first line
// of path ("6.10 - 20241203" gives "6.10"). A missing or unreadable file, or a first word that
// does not look like a version, gives "" (not an error: the system may not be Tails).
func ReadTailsVersion(path string) string {
	line, err := tails.ReadVersion(path)
	if err != nil {
		return ""
	}
	v := strings.Fields(line)[0]
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
// reports in its "error" event and returns from Run. The helper runs as root without the
// session's language: Reason and Args are what the session words for the person
// (session.HelperText); Message is English, for the logs alone.
type Failure struct {
	Code   wire.ErrorCode
	Reason wire.Reason
	Args   wire.Args
	// Message is one English sentence for the logs: what is wrong and what to do.
	Message string
	// Needed and Available are set with CodeNoSpace.
	Needed, Available int64
	// Err is the underlying error, for the log; it is not sent to the session.
	Err error
}

func (f *Failure) Error() string { return f.Message }

func (f *Failure) Unwrap() error { return f.Err }

// failf is the one way a Failure is made: every call names the Reason that the session words
// (TestEveryFailureHasAReason checks each call site) and the Args its sentence uses.
func failf(code wire.ErrorCode, reason wire.Reason, args wire.Args, err error, format string, fargs ...any) *Failure {
	return &Failure{Code: code, Reason: reason, Args: args, Message: fmt.Sprintf(format, fargs...), Err: err}
}

// noSpace is failf for CodeNoSpace, with the sizes of the sentence.
func noSpace(reason wire.Reason, args wire.Args, err error, needed, available int64, format string, fargs ...any) *Failure {
	f := failf(wire.CodeNoSpace, reason, args, err, format, fargs...)
	f.Needed, f.Available = needed, available
	return f
}

func (f *Failure) event() wire.Event {
	ev := wire.Event{Event: wire.EventError, Code: f.Code, Reason: f.Reason, Message: f.Message, Needed: f.Needed, Available: f.Available}
	if f.Args != (wire.Args{}) {
		args := f.Args
		ev.Args = &args
	}
	return ev
}

// stick is how the person knows a stick: String is its English name for the log message, w
// what the session words in the person's language.
type stick struct {
	wire.Stick
	// english, when set, replaces the English name (this Tails' own Persistent Storage, which
	// the session names without a stick).
	english string
}

func (s stick) String() string {
	switch {
	case s.english != "":
		return s.english
	case s.Label == "":
		return "the stick"
	}
	return "the stick " + s.Label
}

// w is the stick for wire.Args (nil for this Tails' own Persistent Storage).
func (s stick) w() *wire.Stick {
	if s.english != "" {
		return nil
	}
	c := s.Stick
	return &c
}

// on is the Args of a sentence that names only the stick.
func (s stick) on() wire.Args { return wire.Args{Stick: s.w()} }

//go:build linux

package helper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// cryptsetupTimeout bounds one cryptsetup run: a key slot with PBKDF2 at 1000 iterations
// takes milliseconds, but checking the user's passphrase runs the slot's own KDF (argon2id
// with Tails' settings: a few seconds, more on a slow computer).
const cryptsetupTimeout = 2 * time.Minute

// Exit codes of cryptsetup (cryptsetup(8), RETURN CODES).
const (
	cryptsetupWrongParams  = 1 // wrong parameters, and "All key slots full"
	cryptsetupNoPermission = 2 // no key slot opens with the given passphrase or key
	cryptsetupWrongDevice  = 4
)

// errNoCryptsetup is a cryptsetup program absent from sys.ProgramPath.
var errNoCryptsetup = errors.New("cryptsetup not found")

// cryptsetupError is a cryptsetup run that exited with a non-zero code.
type cryptsetupError struct {
	Code   int
	Output string // its own messages, bounded (they never hold a secret: it reads them from fds)
}

func (e *cryptsetupError) Error() string {
	return fmt.Sprintf("cryptsetup exited with code %d: %s", e.Code, e.Output)
}

// findProgram finds name in the absolute directories of sys.ProgramPath.
func (s System) findProgram(name string) (string, bool) {
	for _, dir := range filepath.SplitList(s.ProgramPath) {
		if !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the working directory
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// cryptsetup runs the cryptsetup program of sys.ProgramPath with args and a fixed environment.
//
// Secrets never go in args nor in the environment, which any user can read from /proc: each
// of secrets is written into its own pipe, whose read end the child has as file descriptor
// 3+i, so that args name it /proc/self/fd/(3+i) (cryptsetup opens that path, which for a pipe
// is the pipe itself). Standard input is /dev/null. Every secret is smaller than a pipe's
// buffer (64 KiB), so it is written whole and the write end closed before the child starts.
func (o *operation) cryptsetup(ctx context.Context, secrets [][]byte, args ...string) ([]byte, error) {
	prog, ok := o.sys.findProgram("cryptsetup")
	if !ok {
		return nil, errNoCryptsetup
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, s := range secrets {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("cryptsetup: %w", err)
		}
		files = append(files, r)
		_, err = w.Write(s)
		w.Close()
		if err != nil {
			return nil, fmt.Errorf("cryptsetup: write a key into its pipe: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cryptsetupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	// No locale (the messages are classified by exit code, logged as they are), the PATH of
	// the programs it may run, nothing else from the helper's environment.
	cmd.Env = []string{"LC_ALL=C", "PATH=" + o.sys.ProgramPath}
	cmd.ExtraFiles = files
	var out bytes.Buffer
	w := &limitedWriter{w: &out, n: maxCommandOutput}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	o.log.WithField("args", args).WithField("output", shorten(out.String())).Debug("cryptsetup ran")
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return out.Bytes(), &cryptsetupError{Code: ee.ExitCode(), Output: shorten(strings.TrimSpace(out.String()))}
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("cryptsetup: %w", err)
	}
	return out.Bytes(), nil
}

// fdPath is how a child of cryptsetup() names the secret at index i.
func fdPath(i int) string { return "/proc/self/fd/" + strconv.Itoa(3+i) }

// luksHeader is the part of a LUKS2 header's JSON metadata that the key slot operations read
// (cryptsetup luksDump --dump-json-metadata).
type luksHeader struct {
	Keyslots map[string]json.RawMessage `json:"keyslots"`
	Tokens   map[string]luksToken       `json:"tokens"`
}

// luksToken is a LUKS2 token; the helper's own have type keyslotTokenType.
type luksToken struct {
	Type     string   `json:"type"`
	Keyslots []string `json:"keyslots"`
	// Source is the LUKS UUID of the Persistent Storage of the Tails that holds the key.
	Source string `json:"tails_backup_source,omitempty"`
}

// keyslotTokenType marks, in the backup's LUKS2 header, the key slot whose key a main Tails
// keeps: promoting the backup reads it to remove that slot. Not "luks2-" (reserved by
// cryptsetup): cryptsetup keeps a token of an unknown type as it is and never uses it.
const keyslotTokenType = "tails-backup"

// luksMaxKeyslots is the number of key slots of LUKS2 (cryptsetup's LUKS2_KEYSLOTS_MAX).
const luksMaxKeyslots = 32

func (h luksHeader) slots() []int {
	var out []int
	for k := range h.Keyslots {
		if n, err := strconv.Atoi(k); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// luksDump reads the LUKS2 metadata of the device at dev.
func (o *operation) luksDump(ctx context.Context, dev string) (luksHeader, error) {
	out, err := o.cryptsetup(ctx, nil, "luksDump", "--dump-json-metadata", dev)
	if err != nil {
		return luksHeader{}, err
	}
	var h luksHeader
	if err := json.Unmarshal(out, &h); err != nil {
		return luksHeader{}, fmt.Errorf("read the LUKS2 metadata of %s: %w", dev, err)
	}
	return h, nil
}

// keyOpensSlot tells whether key opens the key slot slot of dev (exit code 2: it does not).
func (o *operation) keyOpensSlot(ctx context.Context, dev string, slot int, key []byte) (bool, error) {
	_, err := o.cryptsetup(ctx, [][]byte{key}, "open", "--test-passphrase", "--key-slot", strconv.Itoa(slot),
		"--key-file", fdPath(0), dev)
	var ce *cryptsetupError
	if errors.As(err, &ce) && ce.Code == cryptsetupNoPermission {
		return false, nil
	}
	return err == nil, err
}

// Package pinentry asks a passphrase through pinentry (the Assuan protocol of GnuPG's dialogs),
// with retries.
package pinentry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"tails-backup/internal/secmem"
	"tails-backup/internal/tailbuf"
)

// DefaultPinentry is the pinentry program used on Tails; the PINENTRY_PROGRAM environment
// variable overrides it (see NewPinentry).
const DefaultPinentry = "pinentry-gnome3"

// Prompt is what the passphrase dialog shows. Texts are plain UTF-8; newlines are allowed.
type Prompt struct {
	Title       string // window title
	Description string // the paragraph above the entry
	Prompt      string // the label of the entry, e.g. "Passphrase:"
	Error       string // shown in red above the entry, e.g. after a wrong passphrase; "" for none
	OK, Cancel  string // button labels; "" keeps pinentry's defaults
}

// PassphraseAsker asks the user for a passphrase. The caller owns the returned slice and must
// wipe it (secmem.Wipe(pass), which clears and unlocks it) once used. Implemented by *Pinentry and FakeAsker.
type PassphraseAsker interface {
	AskPassphrase(ctx context.Context, p Prompt) ([]byte, error)
}

// ErrPinentryCancelled: the user closed the dialog or pressed Cancel.
var ErrPinentryCancelled = errors.New("the passphrase dialog was cancelled")

// ErrPinentryProtocol: pinentry said something this client does not understand.
var ErrPinentryProtocol = errors.New("pinentry protocol error")

// ErrTooManyTries: the user typed a wrong passphrase every time.
var ErrTooManyTries = errors.New("wrong passphrase too many times")

// PinentryError is an ERR response of pinentry. errors.Is(err, ErrPinentryCancelled) holds
// for the cancellation codes (GPG_ERR_CANCELED, GPG_ERR_FULLY_CANCELED, any error source).
type PinentryError struct {
	Code uint32
	Text string
}

func (e *PinentryError) Error() string {
	return fmt.Sprintf("pinentry error %d: %s", e.Code, e.Text)
}

// Is matches ErrPinentryCancelled for the cancellation codes.
func (e *PinentryError) Is(target error) bool {
	if target != ErrPinentryCancelled {
		return false
	}
	code := e.Code & 0xffff // the low 16 bits are the error code, the high 8 its source
	return code == gpgErrCanceled || code == gpgErrFullyCanceled
}

const (
	gpgErrCanceled      = 99  // 83886179 = GPG_ERR_SOURCE_PINENTRY<<24 | 99
	gpgErrFullyCanceled = 198 // sent when the user cancels a whole operation
	// assuanLineMax is the longest Assuan line, without its newline.
	assuanLineMax = 1000
	// pinentryReadMax bounds a line read from pinentry (lenient: Assuan says 1000): the
	// size of one locked page.
	pinentryReadMax = secmem.Size
	// maxPassphrase bounds the passphrase: LUKS takes at most 512 bytes. It fits in the
	// locked page the passphrase is read into.
	maxPassphrase = secmem.Size
)

// Pinentry asks passphrases through a pinentry program, speaking the Assuan protocol itself.
// Each AskPassphrase starts the program, which inherits the agent's environment (DISPLAY,
// WAYLAND_DISPLAY, DBUS_SESSION_BUS_ADDRESS). It never sends SETKEYINFO nor the option
// allow-external-password-cache, so pinentry offers no "save in password manager": the
// passphrase is never stored, logged, or put in a command line or the environment.
type Pinentry struct {
	// Program and Args start pinentry.
	Program string
	Args    []string
	log     *logrus.Entry
}

// NewPinentry returns a Pinentry running $PINENTRY_PROGRAM, or DefaultPinentry.
func NewPinentry(log *logrus.Entry) *Pinentry {
	prog := os.Getenv("PINENTRY_PROGRAM")
	if prog == "" {
		prog = DefaultPinentry
	}
	return &Pinentry{Program: prog, log: log}
}

// AskPassphrase shows the dialog and returns what the user typed (possibly empty). It returns
// an error satisfying errors.Is(err, ErrPinentryCancelled) when the user cancels, and ctx.Err()
// (wrapped) when ctx ends, in which case pinentry is killed and the dialog disappears.
func (p *Pinentry) AskPassphrase(ctx context.Context, pr Prompt) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ask passphrase: %w", err)
	}
	cmd := exec.CommandContext(ctx, p.Program, p.Args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start pinentry: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start pinentry: %w", err)
	}
	stderr := tailbuf.New(8, 256)
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pinentry %s: %w", p.Program, err)
	}
	conn := &assuanConn{w: stdin, r: newLineReader(stdout, pinentryReadMax)}
	pass, err := conn.getPassphrase(pr)
	if err == nil {
		_ = conn.command("BYE") // pinentry exits on BYE or on end of input
	}
	conn.r.wipe()
	stdin.Close()
	werr := waitOrKill(cmd, pinentryExitGrace)
	if cerr := ctx.Err(); cerr != nil {
		secmem.Wipe(pass)
		return nil, fmt.Errorf("ask passphrase: %w", cerr)
	}
	if err != nil {
		secmem.Wipe(pass)
		if !errors.Is(err, ErrPinentryCancelled) {
			p.log.WithError(err).WithField("stderr", stderr.Lines()).Warn("pinentry failed")
			if werr != nil {
				err = fmt.Errorf("%w (pinentry: %v)", err, werr)
			}
		}
		return nil, fmt.Errorf("ask passphrase: %w", err)
	}
	return pass, nil
}

// pinentryExitGrace is how long pinentry has to exit once its input is closed.
const pinentryExitGrace = 5 * time.Second

// waitOrKill waits for cmd to exit, killing it after grace. Used for pinentry only, a dialog
// of our own: killing it loses nothing.
func waitOrKill(cmd *exec.Cmd, grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		_ = cmd.Process.Kill()
		return <-done
	}
}

// RetryPolicy says how AskWithRetries retries.
type RetryPolicy struct {
	// Tries is how many passphrases to try; 0 means 3.
	Tries int
	// WrongText is shown with the dialog after a wrong passphrase; "" means
	// "Wrong passphrase, try again."
	WrongText string
	// IsWrong tells whether an error of try means a wrong passphrase (then the user is asked
	// again), e.g. func(err error) bool { return errors.Is(err, udisks.ErrWrongPassphrase) }.
	// nil means no error is a wrong passphrase.
	IsWrong func(error) bool
}

// AskWithRetries asks a passphrase and passes it to try, until try succeeds (nil is
// returned), try fails otherwise than with a wrong passphrase (that error is returned as is),
// the user cancels (an error wrapping ErrPinentryCancelled), ctx ends, or policy.Tries
// passphrases were wrong (an error wrapping ErrTooManyTries and the last error of try). After
// a wrong passphrase, the dialog shows policy.WrongText. The passphrase is cleared after each
// try: try must not keep the slice.
func AskWithRetries(ctx context.Context, asker PassphraseAsker, pr Prompt, policy RetryPolicy, try func(pass []byte) error) error {
	tries := policy.Tries
	if tries <= 0 {
		tries = 3
	}
	wrong := policy.WrongText
	if wrong == "" {
		wrong = "Wrong passphrase, try again."
	}
	var last error
	for i := 0; i < tries; i++ {
		if i > 0 {
			pr.Error = wrong
		}
		pass, err := asker.AskPassphrase(ctx, pr)
		if err != nil {
			return err
		}
		err = try(pass)
		secmem.Wipe(pass)
		if err == nil {
			return nil
		}
		if policy.IsWrong == nil || !policy.IsWrong(err) {
			return err
		}
		last = err
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("ask passphrase: %w", cerr)
		}
	}
	return fmt.Errorf("%w: %w", ErrTooManyTries, last)
}

// assuanConn is the client side of an Assuan connection.
type assuanConn struct {
	w io.Writer
	r *lineReader
}

func (c *assuanConn) getPassphrase(pr Prompt) ([]byte, error) {
	if _, err := c.response(nil); err != nil {
		return nil, fmt.Errorf("pinentry greeting: %w", err)
	}
	cmds := []struct{ verb, arg string }{
		{"SETTITLE", pr.Title}, {"SETDESC", pr.Description}, {"SETPROMPT", pr.Prompt},
		{"SETERROR", pr.Error}, {"SETOK", pr.OK}, {"SETCANCEL", pr.Cancel},
	}
	for _, cmd := range cmds {
		if cmd.arg == "" {
			continue
		}
		if err := c.command(assuanLine(cmd.verb, cmd.arg)); err != nil {
			return nil, fmt.Errorf("pinentry %s: %w", cmd.verb, err)
		}
	}
	if err := c.send("GETPIN"); err != nil {
		return nil, err
	}
	// A page of its own, locked in RAM: maxPassphrase fits, so it never grows into a copy.
	pass := secmem.New(0)
	pass, err := c.response(pass)
	if err != nil {
		secmem.Wipe(pass)
		return nil, err
	}
	return pass, nil
}

// command sends a line and waits for OK, ignoring data.
func (c *assuanConn) command(line string) error {
	if err := c.send(line); err != nil {
		return err
	}
	data, err := c.response(nil)
	clear(data)
	return err
}

func (c *assuanConn) send(line string) error {
	if _, err := io.WriteString(c.w, line+"\n"); err != nil {
		return fmt.Errorf("write to pinentry: %w", err)
	}
	return nil
}

// response reads lines up to OK or ERR, appending the decoded data of D lines to data when it
// is not nil (and discarding it otherwise). Buffers that held data are cleared.
func (c *assuanConn) response(data []byte) ([]byte, error) {
	for {
		line, err := c.r.readLine()
		if err != nil {
			return data, fmt.Errorf("read from pinentry: %w", err)
		}
		resp, err := parseAssuanResponse(line)
		if err != nil {
			return data, err
		}
		switch resp.Kind {
		case assuanOK:
			return data, nil
		case assuanErr:
			return data, &PinentryError{Code: resp.Code, Text: resp.Text}
		case assuanData:
			if data == nil {
				continue
			}
			if data, err = appendPercentDecoded(data, resp.Data, maxPassphrase); err != nil {
				return data, err
			}
		case assuanStatus, assuanComment:
		case assuanInquire:
			return data, fmt.Errorf("%w: unexpected INQUIRE", ErrPinentryProtocol)
		}
	}
}

type assuanKind int

const (
	assuanOK assuanKind = iota
	assuanErr
	assuanData
	assuanStatus
	assuanComment
	assuanInquire
)

// assuanResponse is one parsed line from an Assuan server. Data aliases the line and is still
// percent-encoded.
type assuanResponse struct {
	Kind assuanKind
	Code uint32 // ERR
	Text string // ERR text, OK text, status or inquiry keyword and arguments
	Data []byte // D
}

// parseAssuanResponse parses one line (without its newline) sent by an Assuan server. Errors
// never quote the line, which may be secret.
func parseAssuanResponse(line []byte) (assuanResponse, error) {
	verb, rest, _ := bytes.Cut(line, []byte(" "))
	switch string(verb) {
	case "OK":
		return assuanResponse{Kind: assuanOK, Text: string(rest)}, nil
	case "D":
		return assuanResponse{Kind: assuanData, Data: rest}, nil
	case "S":
		return assuanResponse{Kind: assuanStatus, Text: string(rest)}, nil
	case "INQUIRE":
		return assuanResponse{Kind: assuanInquire, Text: string(rest)}, nil
	case "ERR":
		codeStr, text, _ := bytes.Cut(rest, []byte(" "))
		code, err := strconv.ParseUint(string(codeStr), 10, 32)
		if err != nil {
			return assuanResponse{}, fmt.Errorf("%w: ERR without a valid code", ErrPinentryProtocol)
		}
		t, derr := appendPercentDecoded(nil, text, assuanLineMax)
		if derr != nil || !utf8.Valid(t) {
			t = []byte(strings.ToValidUTF8(string(text), "?"))
		}
		return assuanResponse{Kind: assuanErr, Code: uint32(code), Text: string(t)}, nil
	}
	if len(line) > 0 && line[0] == '#' {
		return assuanResponse{Kind: assuanComment}, nil
	}
	return assuanResponse{}, fmt.Errorf("%w: unexpected response line of %d bytes", ErrPinentryProtocol, len(line))
}

// appendPercentDecoded appends the Assuan percent-decoding of src to dst, refusing to grow dst
// beyond limit bytes. When it must grow dst, the old array is cleared.
func appendPercentDecoded(dst, src []byte, limit int) ([]byte, error) {
	for i := 0; i < len(src); i++ {
		b := src[i]
		if b == '%' {
			if i+2 >= len(src) {
				return dst, fmt.Errorf("%w: truncated percent escape", ErrPinentryProtocol)
			}
			hi, ok1 := unhex(src[i+1])
			lo, ok2 := unhex(src[i+2])
			if !ok1 || !ok2 {
				return dst, fmt.Errorf("%w: invalid percent escape", ErrPinentryProtocol)
			}
			b = hi<<4 | lo
			i += 2
		}
		if len(dst) >= limit {
			return dst, fmt.Errorf("%w: data longer than %d bytes", ErrPinentryProtocol, limit)
		}
		if len(dst) == cap(dst) {
			grown := make([]byte, len(dst), max(2*cap(dst), 64))
			copy(grown, dst)
			clear(dst[:cap(dst)])
			dst = grown
		}
		dst = append(dst, b)
	}
	return dst, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// assuanEscape percent-escapes %, CR, LF and the other control characters.
func assuanEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// assuanLine builds "VERB escaped(arg)", dropping the end of arg at a character boundary if
// needed so that the line fits in an Assuan line.
func assuanLine(verb, arg string) string {
	var b strings.Builder
	b.WriteString(verb)
	b.WriteByte(' ')
	for i := 0; i < len(arg); {
		_, size := utf8.DecodeRuneInString(arg[i:])
		enc := assuanEscape(arg[i : i+size])
		if b.Len()+len(enc) > assuanLineMax {
			break
		}
		b.WriteString(enc)
		i += size
	}
	return b.String()
}

// lineReader reads newline-terminated lines into a buffer it owns, so that the buffer can be
// cleared (the passphrase passes through it).
type lineReader struct {
	r          io.Reader
	buf        []byte
	start, end int
}

// newLineReader reads lines of at most max bytes (at most secmem.Size) into a locked page of
// its own (the passphrase passes through it), which wipe clears and unlocks.
func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: r, buf: secmem.New(max)}
}

// readLine returns the next line without its newline; it is valid until the next call.
func (l *lineReader) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(l.buf[l.start:l.end], '\n'); i >= 0 {
			line := l.buf[l.start : l.start+i]
			l.start += i + 1
			return line, nil
		}
		if l.start > 0 {
			n := copy(l.buf, l.buf[l.start:l.end])
			clear(l.buf[n:l.end])
			l.start, l.end = 0, n
		}
		if l.end == len(l.buf) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrPinentryProtocol, len(l.buf))
		}
		n, err := l.r.Read(l.buf[l.end:])
		l.end += n
		if n == 0 && err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// wipe clears and unlocks the buffer and forgets what it held.
func (l *lineReader) wipe() {
	secmem.Wipe(l.buf)
	l.start, l.end = 0, 0
}

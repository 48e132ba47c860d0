package pinentry

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAssuanEscapeAndLine(t *testing.T) {
	if got := assuanEscape("a%b\nc\rd\te"); got != "a%25b%0Ac%0Dd%09e" {
		t.Errorf("escape = %q", got)
	}
	long := strings.Repeat("é%\n", 600)
	line := assuanLine("SETDESC", long)
	if len(line) > assuanLineMax {
		t.Errorf("line of %d bytes", len(line))
	}
	arg := strings.TrimPrefix(line, "SETDESC ")
	dec, err := appendPercentDecoded(nil, []byte(arg), 4096)
	if err != nil {
		t.Fatalf("cut inside an escape: %v", err)
	}
	if !utf8.Valid(dec) || !strings.HasPrefix(long, string(dec)) || len(dec) < 300 {
		t.Errorf("bad cut: %d bytes, valid=%v", len(dec), utf8.Valid(dec))
	}
	if got := assuanLine("SETTITLE", "short"); got != "SETTITLE short" {
		t.Errorf("line = %q", got)
	}
}

func TestParseAssuanResponse(t *testing.T) {
	cases := []struct {
		line string
		kind assuanKind
		code uint32
		text string
		err  bool
	}{
		{line: "OK", kind: assuanOK},
		{line: "OK Pleased to meet you", kind: assuanOK, text: "Pleased to meet you"},
		{line: "ERR 83886179 Operation cancelled <Pinentry>", kind: assuanErr, code: 83886179, text: "Operation cancelled <Pinentry>"},
		{line: "ERR 5 bad%0Aline", kind: assuanErr, code: 5, text: "bad\nline"},
		{line: "ERR", err: true},
		{line: "ERR x text", err: true},
		{line: "ERR 99999999999 too big", err: true},
		{line: "D abc", kind: assuanData},
		{line: "D", kind: assuanData},
		{line: "S PROGRESS 1", kind: assuanStatus, text: "PROGRESS 1"},
		{line: "# comment", kind: assuanComment},
		{line: "#", kind: assuanComment},
		{line: "INQUIRE PINENTRY_LAUNCHED", kind: assuanInquire, text: "PINENTRY_LAUNCHED"},
		{line: "", err: true},
		{line: "OKAY", err: true},
		{line: "Dsecret", err: true},
	}
	for _, tc := range cases {
		r, err := parseAssuanResponse([]byte(tc.line))
		if (err != nil) != tc.err {
			t.Errorf("%q: err = %v", tc.line, err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("%q: the error quotes the line", tc.line)
			}
			continue
		}
		if r.Kind != tc.kind || r.Code != tc.code || r.Text != tc.text {
			t.Errorf("%q: got %+v", tc.line, r)
		}
	}
	for _, bad := range []string{"%", "%4", "%G0", "a%0"} {
		if _, err := appendPercentDecoded(nil, []byte(bad), 100); !errors.Is(err, ErrPinentryProtocol) {
			t.Errorf("decode %q: err = %v", bad, err)
		}
	}
	if _, err := appendPercentDecoded(nil, []byte("abcdef"), 5); err == nil {
		t.Error("limit not enforced")
	}
	if (&PinentryError{Code: 198}).Is(ErrPinentryCancelled) != true || (&PinentryError{Code: 83886142}).Is(ErrPinentryCancelled) {
		t.Error("cancellation codes")
	}
}

func TestLineReader(t *testing.T) {
	r := newLineReader(strings.NewReader("one\ntwo\nthree"), 16)
	for _, want := range []string{"one", "two"} {
		l, err := r.readLine()
		if err != nil || string(l) != want {
			t.Fatalf("got %q, %v", l, err)
		}
	}
	if _, err := r.readLine(); err == nil {
		t.Fatal("an unterminated last line was returned")
	}
	r.wipe()
	if bytes.Trim(r.buf, "\x00") != nil && len(bytes.Trim(r.buf, "\x00")) != 0 {
		t.Error("wipe left data")
	}
	r = newLineReader(strings.NewReader(strings.Repeat("x", 40)+"\n"), 16)
	if _, err := r.readLine(); !errors.Is(err, ErrPinentryProtocol) {
		t.Fatalf("long line: %v", err)
	}
}

func FuzzAssuanResponse(f *testing.F) {
	for _, s := range []string{"OK", "ERR 83886179 Operation cancelled <Pinentry>", "D p%25ss%0Aw", "S X", "# c", "INQUIRE X", "D %", "D %zz", "ERR 1 %"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := parseAssuanResponse(line)
		if err != nil {
			if !errors.Is(err, ErrPinentryProtocol) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r.Kind == assuanData {
			dec, err := appendPercentDecoded(make([]byte, 0, 1), r.Data, maxPassphrase)
			if err == nil && len(dec) > len(r.Data) {
				t.Fatalf("decoding grew the data")
			}
		}
		// Escaping then decoding anything gives it back, and the line stays one line.
		esc := assuanEscape(string(line))
		if strings.ContainsAny(esc, "\n\r") {
			t.Fatalf("escaped text holds a line break: %q", esc)
		}
		dec, err := appendPercentDecoded(nil, []byte(esc), 4*len(line)+1)
		if err != nil || !bytes.Equal(dec, line) {
			t.Fatalf("round trip of %q: %q, %v", line, dec, err)
		}
		// The reader splits a stream into the same lines.
		lr := newLineReader(bytes.NewReader(append(append([]byte(nil), line...), '\n')), len(line)+2)
		got, err := lr.readLine()
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		if err != nil || !bytes.Equal(got, line) {
			t.Fatalf("line reader: %q, %v", got, err)
		}
	})
}

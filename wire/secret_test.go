package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"tails-backup/internal/logtest"
)

func TestParseSecret(t *testing.T) {
	tests := []struct {
		line string
		want string // "" for an error
	}{
		{`{"passphrase":"c2VjcmV0IHBocmFzZQ=="}`, "secret phrase"},
		{`{"passphrase":"` + strings.Repeat("QUFB", MaxPassphrase/3) + `"}`, strings.Repeat("AAA", MaxPassphrase/3)},
		{`{"passphrase":"` + strings.Repeat("QUFB", MaxPassphrase/3+1) + `"}`, ""},
		{`{"passphrase":""}`, ""},
		{`{}`, ""},
		{`{"passphrase":"c2VjcmV0!!"}`, ""},
		{`{"passphrase":"c2VjcmV0","op":"cancel"}`, ""},
		{`{"passphrase":"c2VjcmV0"}{}`, ""},
		{`"sekritsekrit"`, ""},
		{`sekritsekrit`, ""},
	}
	for _, tt := range tests {
		s, err := ParseSecret([]byte(tt.line))
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrInvalidSecret) {
				t.Errorf("ParseSecret(%.40q) = %q, %v; want an ErrInvalidSecret", tt.line, s.Passphrase, err)
				continue
			}
			// An error never quotes the line.
			for _, part := range []string{"sekrit", "c2VjcmV0", "QUFB"} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("the error %q quotes the line", err)
				}
			}
			continue
		}
		if err != nil || string(s.Passphrase) != tt.want {
			t.Errorf("ParseSecret(%.40q) = %.40q, %v", tt.line, s.Passphrase, err)
		}
		s.Wipe()
		if !bytes.Equal(s.Passphrase, make([]byte, len(tt.want))) {
			t.Error("Wipe left the passphrase")
		}
	}
}

func TestKeySlotRequests(t *testing.T) {
	for _, op := range []Op{OpAddKeySlot, OpUnlockWithKey, OpLockBackup, OpRemoveKeySlot, OpForgetKey} {
		if _, err := ParseRequest([]byte(`{"version":1,"op":"` + string(op) + `","backup":"` + dstUUID + `"}`)); err != nil {
			t.Errorf("%s: %v", op, err)
		}
		for _, bad := range []string{
			`{"version":1,"op":"` + string(op) + `"}`,
			`{"version":1,"op":"` + string(op) + `","backup":"` + dstUUID + `","passphrase":"x"}`,
			`{"version":1,"op":"` + string(op) + `","backup":"` + dstUUID + `","skip":["x"]}`,
		} {
			if _, err := ParseRequest([]byte(bad)); !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("%s accepted", bad)
			}
		}
		if NeedsSecret(op) != (op == OpAddKeySlot) {
			t.Errorf("NeedsSecret(%s) = %v", op, NeedsSecret(op))
		}
	}
}

// TestHelperSecretLine: the client sends add-key-slot's passphrase on the line after the
// request, and nowhere else: not in the request line, not in its log.
func TestHelperSecretLine(t *testing.T) {
	const pass = "correct horse battery staple"
	c, record := fakeHelperClient(t, "linger")
	log, logs := logtest.New(t)
	c.log = log
	req := Request{Version: ProtocolVersion, Op: OpAddKeySlot, Backup: uuidA, Secret: &Secret{Passphrase: []byte(pass)}}
	if _, err := c.Run(logtest.Context(t), req, nil); err != nil {
		t.Fatal(err)
	}
	lines := recorded(t, record)
	if len(lines) != 2 {
		t.Fatalf("the helper read %d lines, want the request and the secret", len(lines))
	}
	if strings.Contains(lines[0], "passphrase") {
		t.Errorf("the request line holds the passphrase: %s", lines[0])
	}
	s, err := ParseSecret([]byte(lines[1]))
	if err != nil || string(s.Passphrase) != pass {
		t.Errorf("secret line: %q, %v", s.Passphrase, err)
	}
	if string(req.Secret.Passphrase) != pass {
		t.Error("the client wiped the caller's passphrase")
	}
	if l := logs.String(); strings.Contains(l, "battery") || strings.Contains(l, lines[1][16:30]) {
		t.Errorf("the passphrase shows in the client's log")
	}

	// Without its secret, or a secret with another op: refused before running anything.
	for _, r := range []Request{
		{Version: ProtocolVersion, Op: OpAddKeySlot, Backup: uuidA},
		{Version: ProtocolVersion, Op: OpUpdate, Backup: uuidA, Secret: &Secret{Passphrase: []byte(pass)}},
		{Version: ProtocolVersion, Op: OpAddKeySlot, Backup: uuidA, Secret: &Secret{}},
	} {
		if _, err := c.Run(logtest.Context(t), r, nil); !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("%s with secret %v: %v", r.Op, r.Secret != nil, err)
		}
	}
}

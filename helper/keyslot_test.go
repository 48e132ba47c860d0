//go:build linux

package helper

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// backupPassphrase is the passphrase of the backup's LUKS image: long and distinctive, so that
// finding it in an argv, an environment, an event or a log cannot be a coincidence.
const backupPassphrase = "correct horse battery staple 7319 ünïcode"

// realCryptsetup finds cryptsetup, which works on an image file or a loop device without
// device-mapper (luksFormat, luksAddKey, luksRemoveKey, luksKillSlot, luksDump, token,
// open --test-passphrase).
func realCryptsetup(t *testing.T) string {
	t.Helper()
	for _, d := range filepath.SplitList(DefaultProgramPath) {
		if p := filepath.Join(d, "cryptsetup"); fileExists(p) {
			return p
		}
	}
	udiskstest.SkipOrFail(t, true, "cryptsetup not found (Debian package cryptsetup-bin)")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// luksImage is a LUKS2 image on a loop device.
type luksImage struct {
	file, loop string
	dev        uint64
}

// newLUKS makes a LUKS2 image whose slot 0 has passphrase (PBKDF2 at its minimum, for speed)
// and attaches it to a loop device.
func newLUKS(t *testing.T, dir, name, passphrase string) *luksImage {
	t.Helper()
	cs := realCryptsetup(t)
	im := &luksImage{file: filepath.Join(dir, name+".luks")}
	if err := os.WriteFile(im.file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(im.file, 32<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cs, "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", "--key-file=-", im.file)
	cmd.Stdin = strings.NewReader(passphrase)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("luksFormat: %v\n%s", err, out)
	}
	im.loop = strings.TrimSpace(run(t, "losetup", "--find", "--show", im.file))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", im.loop).Run() })
	var st unix.Stat_t
	if err := unix.Stat(im.loop, &st); err != nil {
		t.Fatal(err)
	}
	im.dev = st.Rdev
	return im
}

// dump is the LUKS2 metadata of the image.
func (im *luksImage) dump(t *testing.T) luksHeader {
	t.Helper()
	out, err := exec.Command(realCryptsetup(t), "luksDump", "--dump-json-metadata", im.file).Output()
	if err != nil {
		t.Fatalf("luksDump: %v", err)
	}
	var h luksHeader
	if err := json.Unmarshal(out, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// opens tells whether secret opens a key slot of the image (cryptsetup --test-passphrase).
func (im *luksImage) opens(t *testing.T, secret []byte) bool {
	t.Helper()
	cmd := exec.Command(realCryptsetup(t), "open", "--test-passphrase", "--key-file=-", im.file)
	cmd.Stdin = bytes.NewReader(secret)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == cryptsetupNoPermission {
		return false
	}
	if err != nil {
		t.Fatalf("cryptsetup --test-passphrase: %v\n%s", err, out)
	}
	return true
}

// setLUKSDevice makes the fake's LUKS block at p stand for the loop device of im.
func (w *world) setLUKSDevice(p dbus.ObjectPath, im *luksImage) {
	w.fake.Set(p, iBlock, "DeviceNumber", im.dev)
	w.fake.Set(p, iBlock, "Device", append([]byte(im.loop), 0))
	w.fake.Set(p, iBlock, "PreferredDevice", append([]byte(im.loop), 0))
}

// wrapCryptsetup puts first in the helper's program path a cryptsetup that records, from
// /proc while it runs, its command line and environment, then runs the real one; it returns
// the record.
func wrapCryptsetup(t *testing.T, w *world) string {
	t.Helper()
	real := realCryptsetup(t)
	dir := filepath.Join(w.dir, "wrap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(w.dir, "cryptsetup.record")
	script := fmt.Sprintf(`#!/bin/sh
{ printf 'CMDLINE '; tr '\000' ' ' </proc/$$/cmdline; printf '\nENVIRON '; tr '\000' ' ' </proc/$$/environ; printf '\n'; } >>%s
exec %s "$@"
`, record, real)
	if err := os.WriteFile(filepath.Join(dir, "cryptsetup"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w.sys.ProgramPath = dir + ":" + DefaultProgramPath
	return record
}

func secretLine(passphrase string) string {
	b, _ := json.Marshal(wire.Secret{Passphrase: []byte(passphrase)})
	return string(b) + "\n"
}

// keyWorld is a world whose backup's LUKS block is a real LUKS2 image with backupPassphrase.
func keyWorld(t *testing.T) (*world, *luksImage) {
	t.Helper()
	realCryptsetup(t)
	w := newWorld(t, worldOpts{})
	im := newLUKS(t, w.dir, "backup", backupPassphrase)
	w.setLUKSDevice(w.backup.LUKS, im)
	return w, im
}

func (w *world) keyPath() string {
	return filepath.Join(w.src.mnt, tails.KeysDirName, dstUUID+".key")
}

// keptKey reads the key file the helper wrote, checking that it is root's alone.
func (w *world) keptKey(t *testing.T) keyFile {
	t.Helper()
	dir := filepath.Join(w.src.mnt, tails.KeysDirName)
	for _, c := range []struct {
		path string
		mode uint32
	}{{dir, unix.S_IFDIR | 0o700}, {w.keyPath(), unix.S_IFREG | 0o600}} {
		var st unix.Stat_t
		if err := unix.Lstat(c.path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 || st.Gid != 0 || st.Mode != c.mode {
			t.Errorf("%s: owner %d:%d mode %o, want root:root %o", c.path, st.Uid, st.Gid, st.Mode, c.mode)
		}
	}
	fd := openDir(t, dir)
	k, err := readKeyFile(fd, dstUUID)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// addKeySlot runs add-key-slot with passphrase and returns its session, finished.
func (w *world) addKeySlot(t *testing.T, passphrase string) (*session, []wire.Event, error) {
	t.Helper()
	s := start(t, w.sys, request(wire.OpAddKeySlot, dstUUID)+secretLine(passphrase))
	evs, err := s.finish()
	return s, evs, err
}

// noSecrets fails if any of secrets shows in text, as it is, in base64 or in hex.
func noSecrets(t *testing.T, where, text string, secrets ...[]byte) {
	t.Helper()
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		for _, form := range []string{string(s), base64.StdEncoding.EncodeToString(s), hex.EncodeToString(s)} {
			if strings.Contains(text, form) {
				t.Errorf("a secret shows in %s:\n%s", where, text)
				return
			}
		}
	}
}

// TestKeySlotAddAndRemove: add-key-slot adds a slot that the kept key opens, keeps the key
// root's alone, and never shows the passphrase or the key to a child's argv or environment,
// an event or a log; the key folder stays out of the update and of verify; remove-key-slot
// removes the slot and shreds the key.
func TestKeySlotAddAndRemove(t *testing.T) {
	w, im := keyWorld(t)
	record := wrapCryptsetup(t, w)
	fillSource(t, w.src.mnt, 2, 2, 1<<10)

	s, evs, err := w.addKeySlot(t, backupPassphrase)
	done := checkEnd(t, evs, err, wire.EventDone)
	if done.Report == nil || len(done.Report.KeySlots) != 1 || done.Report.KeySlots[0] != 1 {
		t.Fatalf("report %+v, want key slot 1", done.Report)
	}
	h := im.dump(t)
	if got := h.slots(); len(got) != 2 {
		t.Fatalf("slots after add-key-slot: %v, want 2", got)
	}
	k := w.keptKey(t)
	if k.KeySlot != 1 || len(k.Key) != backupKeySize || k.Backup != dstUUID {
		t.Errorf("key file: slot %d, %d-byte key, backup %s", k.KeySlot, len(k.Key), k.Backup)
	}
	if tok, ok := h.Tokens[fmt.Sprint(k.Token)]; !ok || tok.Type != keyslotTokenType || tok.Source != srcUUID || len(tok.Keyslots) != 1 || tok.Keyslots[0] != "1" {
		t.Errorf("tokens %+v, want token %d naming slot 1 and the source", h.Tokens, k.Token)
	}
	if !im.opens(t, k.Key) {
		t.Error("the kept key does not open the backup")
	}
	if !im.opens(t, []byte(backupPassphrase)) {
		t.Error("the passphrase no longer opens the backup")
	}
	if im.opens(t, []byte("wrong")) {
		t.Error("any passphrase opens the backup")
	}
	rec, err := os.ReadFile(record)
	if err != nil || !strings.Contains(string(rec), "luksAddKey") || !strings.Contains(string(rec), "/proc/self/fd/4") {
		t.Fatalf("the wrapper recorded no luksAddKey with the key on fd 4 (%v):\n%s", err, rec)
	}
	secrets := [][]byte{[]byte(backupPassphrase), []byte("battery staple"), k.Key}
	noSecrets(t, "the command lines and environments of cryptsetup", string(rec), secrets...)
	noSecrets(t, "the helper's log", s.logs.String(), secrets...)
	noSecrets(t, "the helper's events", s.raw.String(), secrets...)

	// Adding it again: the key is there and opens its slot, nothing changes.
	_, evs, err = w.addKeySlot(t, backupPassphrase)
	if done := checkEnd(t, evs, err, wire.EventDone); len(done.Report.KeySlots) != 1 || done.Report.KeySlots[0] != 1 || len(im.dump(t).slots()) != 2 {
		t.Errorf("second add-key-slot: report %+v, slots %v", done.Report, im.dump(t).slots())
	}

	// The key folder never reaches the backup; one on the backup is left alone; verify does
	// not compare it.
	evs, err = w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if fileExists(filepath.Join(w.dst.mnt, tails.KeysDirName)) {
		t.Fatal("the update copied the key folder to the backup")
	}
	if err := os.Mkdir(filepath.Join(w.dst.mnt, tails.KeysDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dst.mnt, tails.KeysDirName, otherUUID+".key"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	evs, err = w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if !fileExists(filepath.Join(w.dst.mnt, tails.KeysDirName, otherUUID+".key")) {
		t.Error("the update deleted the backup's own key folder")
	}
	changes, problems, vdone := verifyResult(t, start(t, w.sys, verifyRequest(true)))
	if len(changes) != 0 || len(problems) != 0 || vdone.Report.Created+vdone.Report.Updated+vdone.Report.MetadataOnly+vdone.Report.Deleted != 0 {
		t.Errorf("verify after the update: changes %q, problems %q, report %+v", changes, problems, vdone.Report)
	}

	// Removing: one slot left, the passphrase's; the key shredded; the token gone.
	s = start(t, w.sys, request(wire.OpRemoveKeySlot, dstUUID))
	evs, err = s.finish()
	done = checkEnd(t, evs, err, wire.EventDone)
	if !done.Report.KeyShredded || len(done.Report.KeySlots) != 1 || done.Report.KeySlots[0] != 1 {
		t.Errorf("remove-key-slot report %+v", done.Report)
	}
	h = im.dump(t)
	if got := h.slots(); len(got) != 1 || got[0] != 0 || len(ourTokens(h)) != 0 {
		t.Errorf("after remove-key-slot: slots %v, tokens %+v; want slot 0 only, no token", got, h.Tokens)
	}
	if fileExists(w.keyPath()) {
		t.Error("the key file is still there")
	}
	if im.opens(t, k.Key) || !im.opens(t, []byte(backupPassphrase)) {
		t.Error("after remove-key-slot the key still opens the backup, or the passphrase does not")
	}
	rec, _ = os.ReadFile(record)
	noSecrets(t, "the command lines and environments of cryptsetup", string(rec), secrets...)
	noSecrets(t, "the helper's log", s.logs.String(), secrets...)

	// Nothing kept any more: forget-key has nothing to do, remove-key-slot says the key is
	// missing.
	evs, err = w.do(wire.OpForgetKey, dstUUID)
	if done := checkEnd(t, evs, err, wire.EventDone); done.Report.KeyShredded {
		t.Errorf("forget-key without a key: %+v", done.Report)
	}
	evs, err = w.do(wire.OpRemoveKeySlot, dstUUID)
	if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != wire.CodeKeyMissing {
		t.Errorf("remove-key-slot without a key: %+v", ev)
	}
}

// TestKeySlotFailures: each failure of add-key-slot and remove-key-slot is its own code, and
// leaves no key file behind (nor a slot).
func TestKeySlotFailures(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, w *world, im *luksImage)
		op      wire.Op
		secret  string
		code    wire.ErrorCode
		keyLeft bool
		slots   int
	}{
		{name: "wrong passphrase", op: wire.OpAddKeySlot, secret: "not the passphrase", code: wire.CodeWrongPassphrase, slots: 1},
		{name: "no cryptsetup", op: wire.OpAddKeySlot, secret: backupPassphrase, code: wire.CodeNoCryptsetup, slots: 1,
			prepare: func(t *testing.T, w *world, im *luksImage) { w.sys.ProgramPath = t.TempDir() }},
		{name: "no free slot", op: wire.OpAddKeySlot, secret: backupPassphrase, code: wire.CodeNoFreeKeySlot, slots: luksMaxKeyslots,
			prepare: func(t *testing.T, w *world, im *luksImage) {
				for i := 1; i < luksMaxKeyslots; i++ {
					cmd := exec.Command(realCryptsetup(t), "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
						"--key-file", "/proc/self/fd/3", im.file, "/proc/self/fd/3")
					f, err := os.CreateTemp(t.TempDir(), "pass")
					if err != nil {
						t.Fatal(err)
					}
					f.WriteString(backupPassphrase)
					f.Seek(0, 0)
					cmd.ExtraFiles = []*os.File{f}
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("fill slot %d: %v\n%s", i, err, out)
					}
					f.Close()
				}
			}},
		{name: "last slot", op: wire.OpRemoveKeySlot, code: wire.CodeLastKeySlot, keyLeft: true, slots: 1,
			prepare: func(t *testing.T, w *world, im *luksImage) {
				_, evs, err := w.addKeySlot(t, backupPassphrase)
				checkEnd(t, evs, err, wire.EventDone)
				run(t, realCryptsetup(t), "luksKillSlot", "--batch-mode", im.file, "0")
			}},
		{name: "boot stick", op: wire.OpAddKeySlot, secret: backupPassphrase, code: wire.CodeRefused, slots: 1,
			prepare: func(t *testing.T, w *world, im *luksImage) {
				// The backup's LUKS UUID on the stick this Tails runs from.
				w.fake.Set(w.backup.LUKS, iBlock, "IdUUID", "0ddba11a-0000-4000-8000-00000000ffff")
				w.fake.Set(w.boot.LUKS, iBlock, "IdUUID", dstUUID)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, im := keyWorld(t)
			if tt.prepare != nil {
				tt.prepare(t, w, im)
			}
			input := request(tt.op, dstUUID)
			if tt.secret != "" {
				input += secretLine(tt.secret)
			}
			s := start(t, w.sys, input)
			evs, err := s.finish()
			if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != tt.code {
				t.Errorf("error %+v, want code %s", ev, tt.code)
			}
			if fileExists(w.keyPath()) != tt.keyLeft {
				t.Errorf("key file left: %v, want %v", fileExists(w.keyPath()), tt.keyLeft)
			}
			if got := len(im.dump(t).slots()); got != tt.slots {
				t.Errorf("%d key slots, want %d", got, tt.slots)
			}
			noSecrets(t, "the helper's log", s.logs.String(), []byte(backupPassphrase), []byte(tt.secret))
			noSecrets(t, "the helper's events", s.raw.String(), []byte(backupPassphrase), []byte(tt.secret))
		})
	}
}

// TestKeySlotSecretLine: add-key-slot needs its secret line, and an error about it never quotes
// it.
func TestKeySlotSecretLine(t *testing.T) {
	w := newWorld(t, worldOpts{})
	w.sys.RequestTimeout = 500 * 1e6
	for _, line := range []string{
		`{"passphrase":"c2VjcmV0!!c2VjcmV0"}` + "\n", // not base64
		`{"passphrase":"c2VjcmV0c2VjcmV0","x":1}` + "\n",
		`{"passphrase":""}` + "\n",
		"sekritsekrit\n",
		"", // none: the timeout
	} {
		s := start(t, w.sys, request(wire.OpAddKeySlot, dstUUID)+line)
		evs, err := s.finish()
		ev := checkEnd(t, evs, err, wire.EventError)
		if ev.Code != wire.CodeInvalidRequest {
			t.Errorf("secret line %q: %+v, want invalid-request", line, ev)
		}
		noSecrets(t, "the error", ev.Message+s.logs.String(), []byte("sekritsekrit"), []byte("c2VjcmV0"))
	}
}

// mountLikeUDisks makes the fake's Mount of the backup's cleartext block mount, for real, the
// backup's image: where udisks2 would, under media/root for root, under media/amnesia for
// amnesia (as-user), as bind mounts of the image's mount.
func (w *world) mountLikeUDisks(t *testing.T) (asRoot, asAmnesia string) {
	t.Helper()
	media := filepath.Join(w.dir, "media")
	for _, user := range []string{"root", tails.AmnesiaUser} {
		dir := filepath.Join(media, user, tails.PersistenceName)
		must(t, os.MkdirAll(dir, 0o755))
		run(t, "mount", "--bind", w.dst.mnt, dir)
		t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	}
	w.fake.SetMountRoot(filepath.Join(media, "root"))
	w.fake.OnCall("Mount", func(c udiskstest.Call) *dbus.Error {
		w.setDevice(c.Path, w.dst)
		return nil
	})
	return filepath.Join(media, "root", tails.PersistenceName), filepath.Join(media, tails.AmnesiaUser, tails.PersistenceName)
}

// TestUnlockWithKey: the kept key unlocks the locked backup through udisks' keyfile_contents,
// and the helper mounts it for the session (udisks2 refuses amnesia the mount of what root
// unlocked): on behalf of amnesia with udisks2 2.10, as root with 2.9, its marker checked; a
// missing or refused key is its own code, and a stick that is not a backup is refused (and
// left locked).
func TestUnlockWithKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xa5, 0x17}, backupKeySize/2)
	keep := func(t *testing.T, w *world) {
		fd := openDir(t, w.src.mnt)
		dirfd, err := openKeysDir(fd, true)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(dirfd)
		if err := writeKeyFile(dirfd, keyFile{Format: keyFileFormat, Backup: dstUUID, KeySlot: 1, Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	locked := func(spec *udiskstest.StickSpec) { spec.MountedAt, spec.Unlocked = "", false }
	tests := []struct {
		name     string
		backup   func(spec *udiskstest.StickSpec)
		version  string // of udisks2; "" for the fake's 2.9.4
		keep     bool
		deviceOK bool // the fake accepts the key
		uuid     string
		other    bool // the backup's marker names another Tails
		code     wire.ErrorCode
		already  bool
	}{
		{name: "unlocks, mounted as root (udisks2 2.9)", backup: locked, keep: true, deviceOK: true},
		{name: "unlocks, mounted as amnesia (udisks2 2.10)", backup: locked, version: "2.10.1", keep: true, deviceOK: true},
		{name: "already unlocked", keep: true, deviceOK: true, already: true},
		{name: "key missing", backup: locked, deviceOK: true, code: wire.CodeKeyMissing},
		{name: "key refused", backup: locked, keep: true, code: wire.CodeKeyRefused},
		{name: "the backup of another Tails", backup: locked, keep: true, deviceOK: true, other: true, code: wire.CodeNotPaired},
		{name: "the backup of another Tails, udisks2 2.10", backup: locked, version: "2.10.1", keep: true, deviceOK: true, other: true, code: wire.CodeNotPaired},
		{name: "boot stick", backup: locked, keep: true, deviceOK: true, uuid: srcUUID, code: wire.CodeRefused},
		{name: "not plugged in", backup: locked, keep: true, deviceOK: true, uuid: otherUUID, code: wire.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOpts{backup: tt.backup})
			if tt.version != "" {
				w.fake.SetVersion(tt.version)
			}
			asRoot, asAmnesia := w.mountLikeUDisks(t)
			if tt.other {
				w.writeMarker(w.dst.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
					Started: w.sys.Now(), Finished: w.sys.Now()})
			}
			if tt.keep {
				keep(t, w)
			}
			if tt.deviceOK {
				w.fake.SetKey(w.backup.LUKS, key)
			}
			uuid := dstUUID
			if tt.uuid != "" {
				uuid = tt.uuid
			}
			s := start(t, w.sys, request(wire.OpUnlockWithKey, uuid))
			evs, err := s.finish()
			noSecrets(t, "the helper's log and events", s.logs.String()+s.raw.String(), key)
			ct, _ := w.fake.Get(w.backup.LUKS, "org.freedesktop.UDisks2.Encrypted", "CleartextDevice").(dbus.ObjectPath)
			if tt.code != "" {
				if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != tt.code {
					t.Errorf("error %+v, want %s", ev, tt.code)
				}
				if tt.other && ct != "/" {
					t.Errorf("the backup of another Tails is left unlocked (%s)", ct)
				}
				return
			}
			done := checkEnd(t, evs, err, wire.EventDone)
			if done.Report.Cleartext == "" || done.Report.AlreadyUnlocked != tt.already {
				t.Fatalf("report %+v", done.Report)
			}
			calls := w.fake.CallsOf("Unlock")
			if tt.already {
				if len(calls) != 0 || len(w.fake.CallsOf("Mount")) != 0 {
					t.Errorf("unlocked or mounted an unlocked backup: %+v", w.fake.Calls())
				}
				return
			}
			if len(calls) != 1 || calls[0].Path != w.backup.LUKS {
				t.Fatalf("Unlock calls %+v, want one on the backup", calls)
			}
			if v, ok := calls[0].Options["keyfile_contents"]; !ok || v.Value() != "<keyfile>" {
				t.Errorf("Unlock options %v: want keyfile_contents (recorded as a placeholder)", calls[0].Options)
			}
			if ct != dbus.ObjectPath(done.Report.Cleartext) {
				t.Errorf("the report's cleartext %s, udisks' %v", done.Report.Cleartext, ct)
			}
			mounts := w.fake.CallsOf("Mount")
			if len(mounts) != 1 || mounts[0].Path != ct {
				t.Fatalf("Mount calls %+v, want one on the cleartext block", mounts)
			}
			user, hasUser := mounts[0].Options["as-user"]
			wantRoot := tt.version == ""
			switch {
			case wantRoot && (hasUser || !done.Report.MountedAsRoot || done.Report.MountPoint != asRoot):
				t.Errorf("udisks2 2.9: Mount options %v, report %+v: want as root at %s", mounts[0].Options, done.Report, asRoot)
			case !wantRoot && (!hasUser || user.Value() != tails.AmnesiaUser || done.Report.MountedAsRoot || done.Report.MountPoint != asAmnesia):
				t.Errorf("udisks2 2.10: Mount options %v, report %+v: want as-user amnesia at %s", mounts[0].Options, done.Report, asAmnesia)
			}
			if o, ok := mounts[0].Options["options"]; !ok || o.Value() != udisks.MountOptions {
				t.Errorf("Mount options %v, want %q", mounts[0].Options, udisks.MountOptions)
			}
		})
	}
}

// TestLockBackup: lock-backup unmounts and locks, as root, the backup of this Tails; one
// locked already is left as it is; a mounted stick whose marker names another Tails, or one
// that an operation of the helper is writing, is refused and left as it is.
func TestLockBackup(t *testing.T) {
	tests := []struct {
		name   string
		backup func(spec *udiskstest.StickSpec)
		other  bool
		busy   bool
		code   wire.ErrorCode
		calls  []string
	}{
		{name: "mounted", calls: []string{"Unmount", "Lock"}},
		{name: "unlocked, not mounted", backup: func(spec *udiskstest.StickSpec) { spec.MountedAt, spec.Unlocked = "", true }, calls: []string{"Lock"}},
		{name: "locked already", backup: func(spec *udiskstest.StickSpec) { spec.MountedAt, spec.Unlocked = "", false }},
		{name: "the backup of another Tails", other: true, code: wire.CodeNotPaired},
		{name: "an update is running", busy: true, code: wire.CodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOpts{backup: tt.backup})
			if tt.other {
				w.writeMarker(w.dst.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
					Started: w.sys.Now(), Finished: w.sys.Now()})
			}
			if tt.busy {
				fd := openDir(t, w.dst.mnt)
				must(t, unix.Flock(fd, unix.LOCK_EX))
			}
			evs, err := w.do(wire.OpLockBackup, dstUUID)
			var got []string
			for _, c := range w.fake.Calls() {
				got = append(got, c.Method)
			}
			if !slices.Equal(got, tt.calls) {
				t.Errorf("udisks calls %v, want %v", got, tt.calls)
			}
			if tt.code != "" {
				if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != tt.code {
					t.Errorf("error %+v, want %s", ev, tt.code)
				}
				return
			}
			checkEnd(t, evs, err, wire.EventDone)
			if ct := w.fake.Get(w.backup.LUKS, "org.freedesktop.UDisks2.Encrypted", "CleartextDevice"); ct != dbus.ObjectPath("/") {
				t.Errorf("the backup is still unlocked (%v)", ct)
			}
		})
	}
}

// TestPromoteRemovesTheFormerMainsKeySlot: a backup made the main Tails loses the key slot
// whose key the lost main Tails kept (the one its token names), and keeps its passphrase.
func TestPromoteRemovesTheFormerMainsKeySlot(t *testing.T) {
	w := newWorld(t, worldOpts{})
	own := newLUKS(t, w.dir, "own", backupPassphrase)
	w.setLUKSDevice(w.boot.LUKS, own)
	w.writeMarker(w.src.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
		Started: w.sys.Now(), Finished: w.sys.Now()})
	// What add-key-slot did on this stick when it was the backup.
	key := bytes.Repeat([]byte{0x3c}, backupKeySize)
	keyPath := filepath.Join(w.dir, "oldkey")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(realCryptsetup(t), "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
		"--key-file=-", own.file, keyPath)
	cmd.Stdin = strings.NewReader(backupPassphrase)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("luksAddKey: %v\n%s", err, out)
	}
	cmd = exec.Command(realCryptsetup(t), "token", "import", "--json-file=-", own.file)
	cmd.Stdin = strings.NewReader(`{"type":"tails-backup","keyslots":["1"],"tails_backup_source":"` + otherUUID + `"}`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("token import: %v\n%s", err, out)
	}
	if !own.opens(t, key) {
		t.Fatal("test setup: the old main's key does not open the stick")
	}

	b, _ := json.Marshal(wire.Request{Version: wire.ProtocolVersion, Op: wire.OpPromote})
	evs, err := start(t, w.sys, string(b)+"\n").finish()
	done := checkEnd(t, evs, err, wire.EventDone)
	if done.Report == nil || len(done.Report.KeySlots) != 1 || done.Report.KeySlots[0] != 1 {
		t.Errorf("promote report %+v, want key slot 1 removed", done.Report)
	}
	h := own.dump(t)
	if got := h.slots(); len(got) != 1 || got[0] != 0 || len(ourTokens(h)) != 0 {
		t.Errorf("after promote: slots %v, tokens %+v", got, h.Tokens)
	}
	if own.opens(t, key) || !own.opens(t, []byte(backupPassphrase)) {
		t.Error("after promote the old main's key still opens this Tails, or its passphrase does not")
	}
	if fileExists(filepath.Join(w.src.mnt, tails.MarkerName)) {
		t.Error("the marker is still there")
	}
	// Promoting again: nothing left to remove.
	evs, err = start(t, w.sys, string(b)+"\n").finish()
	if done := checkEnd(t, evs, err, wire.EventDone); len(done.Report.KeySlots) != 0 {
		t.Errorf("second promote %+v", done.Report)
	}
}

// TestRestoreKeepsThisTailsKeys: a restore neither brings back the keys folder of the backup
// (another Tails' keys, or stale ones) nor touches this Tails' own.
func TestRestoreKeepsThisTailsKeys(t *testing.T) {
	w := backedUpWorld(t, worldOpts{})
	fd := openDir(t, w.src.mnt)
	dirfd, err := openKeysDir(fd, true)
	must(t, err)
	must(t, writeKeyFile(dirfd, keyFile{Format: keyFileFormat, Backup: dstUUID, KeySlot: 1, Key: bytes.Repeat([]byte{7}, backupKeySize)}))
	unix.Close(dirfd)
	ownKeys := filepath.Join(w.src.mnt, tails.KeysDirName)
	before := listing(t, ownKeys)
	must(t, os.Mkdir(filepath.Join(w.dst.mnt, tails.KeysDirName), 0o700))
	must(t, os.WriteFile(filepath.Join(w.dst.mnt, tails.KeysDirName, otherUUID+".key"), []byte(`{"format":1}`), 0o600))

	restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	if after := listing(t, ownKeys); after != before {
		t.Errorf("the restore changed this Tails' keys:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if fileExists(filepath.Join(ownKeys, otherUUID+".key")) {
		t.Error("the restore brought back the backup's keys")
	}
}

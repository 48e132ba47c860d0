package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"tails-backup/pairing"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
)

// The create tests run in the pair tests' world (fake udisks2 with the standard sticks: the
// boot stick sda, the Tails stick sdb, the plain stick sdc, the internal disk vda), with this
// Tails' Persistent Storage holding createUsed bytes and a root helper scripted per operation.

const (
	createUsed = 1 << 30
	newPass    = "new backup passphrase"
	iBlock     = "org.freedesktop.UDisks2.Block"
	iPart      = "org.freedesktop.UDisks2.Partition"
	iEnc       = "org.freedesktop.UDisks2.Encrypted"
	iFS        = "org.freedesktop.UDisks2.Filesystem"
)

var createOps = []string{"create-persistence", "mark", "refresh-system", "install-bootloader", "update"}

type createWorld struct {
	*pairWorld
	tb                testing.TB
	helperCmd, record string
	answers           string // folder of the helper's answers, one file per operation

	mu sync.Mutex
	// ejected holds the properties of the partitions of the sticks as they were when create
	// powered one off (the fake then forgets them), by object path and "interface property".
	ejected map[dbus.ObjectPath]map[string]any
}

// partitionProps are the properties the tests look at after a creation.
var partitionProps = [][2]string{{iPart, "Type"}, {iPart, "Name"}, {iPart, "Offset"}, {iPart, "Size"}, {iPart, "Flags"},
	{iBlock, "IdType"}, {iBlock, "IdLabel"}, {iBlock, "IdUUID"}, {iBlock, "IdVersion"}, {iEnc, "CleartextDevice"}, {iFS, "MountPoints"}}

// mib is a mebibyte, the unit of the partition layout.
const mib = 1 << 20

// prop is a property of a partition, as it is now or, once powered off, as it was then.
func (w *createWorld) prop(p dbus.ObjectPath, iface, name string) any {
	if w.fake.Exists(p) {
		return w.fake.Get(p, iface, name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ejected[p][iface+" "+name]
}

func newCreateWorld(t *testing.T) *createWorld {
	t.Helper()
	w := &createWorld{pairWorld: newPairWorld(t), tb: t}
	w.sys.usedBytes = func(dir string) (uint64, error) {
		if dir != w.sys.markerRoot {
			t.Errorf("usedBytes(%s), want this Tails' Persistent Storage %s", dir, w.sys.markerRoot)
		}
		return createUsed, nil
	}
	w.helperCmd, w.record, w.answers = perOpHelper(t)
	w.defaultAnswers()
	w.fake.OnCall("PowerOff", func(udiskstest.Call) *dbus.Error {
		saved := map[dbus.ObjectPath]map[string]any{}
		for _, name := range []string{"sdb1", "sdb2", "sdc1", "sdc2"} {
			p := udiskstest.BlockPath(name)
			saved[p] = map[string]any{}
			for _, k := range partitionProps {
				saved[p][k[0]+" "+k[1]] = w.fake.Get(p, k[0], k[1])
			}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.ejected = saved
		return nil
	})
	return w
}

// defaultAnswers scripts the helper for a creation that works: a refresh-system that reports
// its progress and the version copied, an update that copies; the others just say done.
func (w *createWorld) defaultAnswers() {
	for _, op := range []string{"create-persistence", "mark"} {
		os.Remove(filepath.Join(w.answers, op))
	}
	w.answer("refresh-system",
		`{"event":"progress","phase":"system","files_done":1,"files_total":4,"bytes_done":25,"bytes_total":100}`,
		`{"event":"progress","phase":"system","files_done":2,"files_total":4,"bytes_done":50,"bytes_total":100}`,
		`{"event":"progress","phase":"system","files_done":4,"files_total":4,"bytes_done":100,"bytes_total":100}`,
		`{"event":"done","report":{"created":4,"bytes_copied":100,"system_version":"Tails 6.10 - 20241203","bootloader_changed":true}}`)
	w.answer("install-bootloader", `{"event":"done","report":{"bootloader":"syslinux"}}`)
	w.answer("update",
		`{"event":"progress","phase":"scan","files_total":3}`,
		`{"event":"progress","phase":"copy","files_done":3,"files_total":3,"bytes_done":30,"bytes_total":30}`,
		`{"event":"done","report":{"created":3,"bytes_copied":30,"duration_ns":1000}}`)
}

// perOpHelper writes a root helper that appends each request to record and answers with
// the lines of the file named after the request's op in answers (a bare done if none), exiting
// 1 after an error event.
func perOpHelper(t *testing.T) (command, record, answers string) {
	t.Helper()
	dir := t.TempDir()
	record, answers = filepath.Join(dir, "requests"), filepath.Join(dir, "answers")
	if err := os.Mkdir(answers, 0o755); err != nil {
		t.Fatal(err)
	}
	command = filepath.Join(dir, "helper")
	writeFile(t, command, `#!/bin/sh
IFS= read -r req || exit 1
printf '%s\n' "$req" >> '`+record+`'
op=$(printf '%s\n' "$req" | sed -n 's/.*"op":"\([a-z-]*\)".*/\1/p')
if [ "$op" = add-key-slot ]; then
	IFS= read -r secret || exit 1
	printf '%s\n' "$secret" >> '`+record+`'
fi
out='`+answers+`'/"$op"
if [ ! -f "$out" ]; then
	echo '{"event":"done"}'
	exit 0
fi
cat "$out"
if grep -q '"event":"error"' "$out"; then exit 1; fi
`)
	if err := os.Chmod(command, 0o755); err != nil {
		t.Fatal(err)
	}
	return command, record, answers
}

// answer scripts the helper's output for op.
func (w *createWorld) answer(op string, lines ...string) {
	if err := os.WriteFile(filepath.Join(w.answers, op), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		w.tb.Fatal(err)
	}
}

// requestCount counts the requests the helper received so far (-1 if they cannot be read); it
// runs in the fake's hooks, where the test cannot stop.
func (w *createWorld) requestCount() int {
	b, err := os.ReadFile(w.record)
	switch {
	case os.IsNotExist(err):
		return 0
	case err != nil:
		return -1
	}
	return strings.Count(string(b), "\n")
}

// ops returns the operations the helper received, in order, checking that each named the
// backup uuid.
func (w *createWorld) ops(t *testing.T, uuid string) []string {
	t.Helper()
	var out []string
	for _, r := range helperRequests(t, w.record) {
		out = append(out, r["op"].(string))
		if r["backup"] != uuid || r["version"] != float64(1) {
			t.Errorf("request %v, want backup %s", r, uuid)
		}
	}
	return out
}

func (w *createWorld) create(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return runSession(t, stdin, append([]string{"create", "--state", w.state, "--helper-command", w.helperCmd}, args...)...)
}

// newStick is what create made on the stick sd?: its system partition and Persistent Storage.
type newStick struct {
	system, luks dbus.ObjectPath
	uuid         string
}

func (w *createWorld) made(name string) newStick {
	luks := udiskstest.BlockPath(name + "2")
	uuid, _ := w.prop(luks, iBlock, "IdUUID").(string)
	return newStick{system: udiskstest.BlockPath(name + "1"), luks: luks, uuid: uuid}
}

// writes returns the calls that change a stick.
func (w *createWorld) writes() []string {
	var out []string
	for _, c := range w.fake.Calls() {
		switch c.Method {
		case "Format", "CreatePartition", "CreatePartitionAndFormat", "SetFlags", "Mount", "Unmount", "Lock", "Unlock", "PowerOff":
			out = append(out, c.Method+" "+string(c.Path))
		}
	}
	return out
}

func equalStrings(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func TestCreateListsTheDrives(t *testing.T) {
	w := newCreateWorld(t)
	w.fake.AddStick(udiskstest.StickSpec{Name: "sdd", Vendor: "Tiny", Model: "Stick", Size: 4_000_000_000, Removable: true, ConnectionBus: "usb"})
	ro := w.fake.AddStick(udiskstest.StickSpec{Name: "sde", Vendor: "Locked", Model: "Stick", Removable: true, ConnectionBus: "usb"})
	w.fake.Set(ro.Disk, iBlock, "ReadOnly", true)
	code, stdout, stderr := w.create(t, "")
	if code != 2 {
		t.Fatalf("exit %d, want 2 (two sticks can be used, none named)", code)
	}
	wantContains(t, "stdout", stdout,
		"Drives plugged in:\n"+
			"  /dev/sdb   Kingston DataTraveler, 17.2 GB, a Tails stick: can be used\n"+
			"  /dev/sdc   Generic Flash Disk, 17.2 GB: can be used\n"+
			"  /dev/sda   SanDisk Cruzer, 17.2 GB: cannot be used: it is the stick this Tails is running from\n"+
			"  /dev/sdd   Tiny Stick, 4.0 GB: cannot be used: it is too small: a backup of this Tails needs a stick of at least 7.5 GB, this one has 4.0 GB\n"+
			"  /dev/sde   Locked Stick, 17.2 GB: cannot be used: it is read-only (if it has a lock switch, unlock it)\n"+
			"  /dev/vda   Virtual disk, 274.9 GB: cannot be used: it is an internal disk, not a removable USB stick\n"+
			"Your Persistent Storage holds 1.1 GB: a backup of this Tails needs a USB stick of at least 7.5 GB.\n")
	wantContains(t, "stderr", stderr, "2 USB sticks can be used; say which one to erase, e.g. 'tails-backup create /dev/sdb'")
	if got := w.writes(); len(got) != 0 {
		t.Errorf("udisks calls %v", got)
	}
}

func TestCreateListsBackups(t *testing.T) {
	w := newCreateWorld(t)
	saveState(t, w.state, pairedState(2))
	// A stick left unfinished by an interrupted create, opened in the Files browser: its marker
	// names this Tails, and the store does not have it.
	// Another, finished, whose pairing was lost; and one made from another Tails.
	bootUUID, _ := w.fake.Get(w.std.Boot.LUKS, iBlock, "IdUUID").(string)
	markers := []struct {
		name, source string
		state        tails.UpdateState
	}{{"sdd", bootUUID, tails.StateIncomplete}, {"sde", bootUUID, tails.StateComplete}, {"sdf", mainUUID, tails.StateIncomplete}}
	for i, mk := range markers {
		mnt := t.TempDir()
		m := tails.Marker{Format: tails.MarkerFormat, Source: mk.source, State: mk.state, Started: testNow}
		if mk.state == tails.StateComplete {
			m.Finished = testNow
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(mnt, tails.MarkerName), string(b))
		w.fake.AddStick(udiskstest.StickSpec{Name: mk.name, Vendor: "Samsung", Model: "BAR Plus", Serial: mk.name, Removable: true, ConnectionBus: "usb",
			Tails: true, Passphrase: "x", LUKSUUID: strings.Replace(otherUUID, "aa", fmt.Sprintf("a%d", i), 1), MountedAt: mnt})
	}
	code, stdout, _ := w.create(t, "")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	wantContains(t, "stdout", stdout,
		"  /dev/sdb   Kingston DataTraveler, 17.2 GB, your backup Tails: can be used\n",
		"  /dev/sdd   Samsung BAR Plus, 17.2 GB, an unfinished backup of this Tails: can be used\n",
		"  /dev/sde   Samsung BAR Plus, 17.2 GB, a backup of this Tails, not paired: can be used\n",
		"  /dev/sdf   Samsung BAR Plus, 17.2 GB, a Tails stick: can be used\n")
}

func TestCreateRefusesTheStick(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"the boot stick", []string{"--yes", "/dev/sda"}, 1, "tails-backup create: /dev/sda cannot be used: it is the stick this Tails is running from\n"},
		{"a partition of the boot stick", []string{"/dev/sda2"}, 1, "/dev/sda2 cannot be used: it is the stick this Tails is running from"},
		{"the internal disk", []string{"vda"}, 1, "/dev/vda cannot be used: it is an internal disk, not a removable USB stick"},
		{"no such device", []string{"/dev/sdz"}, 1, "there is no USB stick /dev/sdz; run 'tails-backup create' without a device to list the drives plugged in"},
		{"--yes without a device", []string{"--yes"}, 2, "--yes erases without asking, so name the stick to erase"},
		{"--replace without --yes", []string{"--replace", "/dev/sdc"}, 2, "--replace only goes with --yes"},
		{"two devices", []string{"/dev/sdb", "/dev/sdc"}, 2, "give at most one device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newCreateWorld(t)
			code, _, stderr := w.create(t, "yes\n", tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d", code, tt.wantCode)
			}
			wantContains(t, "stderr", stderr, tt.wantStderr)
			if got := w.writes(); len(got) != 0 || helperRequests(t, w.record) != nil {
				t.Errorf("something was done: udisks %v", got)
			}
		})
	}
}

func TestCreateNoStickFits(t *testing.T) {
	w := newCreateWorld(t)
	w.fake.Unplug(w.std.Backup.Drive)
	w.fake.Unplug(w.std.Other.Drive)
	code, _, stderr := w.create(t, "")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stderr", stderr, "no USB stick plugged in can hold a backup of this Tails; plug in a USB stick big enough (see above) and try again")
}

func TestCreateDeclined(t *testing.T) {
	for _, answer := range []string{"y\n", "n\n", "\n", "", "yes please\n"} {
		t.Run(strings.TrimSpace(answer), func(t *testing.T) {
			w := newCreateWorld(t)
			pinLog := fakePinentry(t, w.pinentry, newPass)
			code, stdout, stderr := w.create(t, answer, "/dev/sdc")
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			wantContains(t, "stdout", stdout,
				"Everything on Generic Flash Disk (17.2 GB, /dev/sdc) will be erased:\n"+
					"  partition 1: 17.2 GB, named \"Data\", FAT file system labelled \"DATA\"\n"+
					"Type yes to erase Generic Flash Disk (17.2 GB, /dev/sdc) and make it your backup Tails: ")
			wantContains(t, "stderr", stderr, "not confirmed, so nothing was changed (type yes to erase the stick, or use --yes)")
			if got := w.writes(); len(got) != 0 {
				t.Errorf("udisks writes before the confirmation: %v", got)
			}
			if readString(t, pinLog) != "" || helperRequests(t, w.record) != nil {
				t.Error("the passphrase was asked or the helper run")
			}
			if _, ok := loadStateFile(t, w.state); ok {
				t.Error("the store was written")
			}
		})
	}
}

func TestCreateShowsWhatIsErased(t *testing.T) {
	w := newCreateWorld(t)
	fakePinentry(t, w.pinentry, "!cancel")
	code, stdout, stderr := w.create(t, "yes\n", "/dev/sdb")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stdout", stdout,
		"Everything on Kingston DataTraveler (17.2 GB, /dev/sdb) will be erased:\n"+
			"  partition 1: 4.3 GB, named \"Tails\", FAT file system labelled \"Tails\"\n"+
			"  partition 2: 12.9 GB, named \"TailsData\", encrypted (LUKS)\n")
	wantContains(t, "stderr", stderr, "the passphrase was not given, so nothing was changed")
	if got := w.writes(); len(got) != 0 {
		t.Errorf("udisks writes: %v", got)
	}
}

func TestCreateHappyPath(t *testing.T) {
	w := newCreateWorld(t)
	pinLog := fakePinentry(t, w.pinentry, newPass, newPass)
	sys1 := udiskstest.BlockPath("sdc1")
	// At each step that needs it, the state of the stick and of the store are as they must be.
	var mu sync.Mutex
	var checked []string
	w.fake.OnCall("Mount", func(c udiskstest.Call) *dbus.Error {
		if c.Path == sys1 {
			mu.Lock()
			defer mu.Unlock()
			checked = append(checked, "mount system")
			if got := w.requestCount(); got != 2 {
				t.Errorf("system partition mounted after %d helper operations, want 2 (create-persistence, mark)", got)
			}
			if _, err := os.Stat(w.state); err == nil {
				t.Error("the store was written before the end")
			}
		}
		return nil
	})
	// The pairing is saved after the power-off: a running agent that saw it while the stick is
	// still there would start an update of it.
	w.fake.OnCall("PowerOff", func(udiskstest.Call) *dbus.Error {
		if _, err := os.Stat(w.state); err == nil {
			t.Error("the store was written before the stick was powered off")
		}
		return nil
	})
	w.fake.OnCall("Unmount", func(c udiskstest.Call) *dbus.Error {
		mu.Lock()
		defer mu.Unlock()
		if c.Path == sys1 && len(checked) == 1 {
			checked = append(checked, "unmount system")
			if got := w.requestCount(); got != 3 {
				t.Errorf("system partition unmounted after %d helper operations, want 3 (... refresh-system)", got)
			}
		}
		return nil
	})
	code, stdout, stderr := w.create(t, "", "--yes", "/dev/sdc")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if !equalStrings(checked, []string{"mount system", "unmount system"}) {
		t.Errorf("system partition: %v", checked)
	}
	n := w.made("sdc")
	if !tails.ValidUUID(n.uuid) {
		t.Fatalf("new LUKS UUID %q", n.uuid)
	}
	// The partitions.
	disk := w.std.Other.Disk
	formats := w.fake.CallsOf("Format")
	if len(formats) != 1 || formats[0].Path != disk || formats[0].Args[0] != "gpt" {
		t.Errorf("Format calls %+v", formats)
	}
	if _, erase := formats[0].Options["erase"]; erase {
		t.Error("the stick was erased block by block")
	}
	want := []struct {
		path                 dbus.ObjectPath
		typ, name, fs, label string
		offset, size, flags  uint64
	}{
		{n.system, udiskstest.ESPType, "Tails", "vfat", "Tails", 2 * mib, 8 << 30, tails.SystemPartitionFlags},
		{n.luks, udiskstest.TailsDataType, "TailsData", "crypto_LUKS", "", 8194 * mib, 16<<30 - 8194*mib - mib, 0},
	}
	for _, p := range want {
		got := []any{w.prop(p.path, iPart, "Type"), w.prop(p.path, iPart, "Name"), w.prop(p.path, iBlock, "IdType"),
			w.prop(p.path, iBlock, "IdLabel"), w.prop(p.path, iPart, "Offset"), w.prop(p.path, iPart, "Size"), w.prop(p.path, iPart, "Flags")}
		exp := []any{p.typ, p.name, p.fs, p.label, p.offset, p.size, p.flags}
		for i := range got {
			if got[i] != exp[i] {
				t.Errorf("%s: got %v, want %v", p.path, got, exp)
				break
			}
		}
	}
	if v := w.prop(n.luks, iBlock, "IdVersion"); v != "2" {
		t.Errorf("LUKS version %v, want 2", v)
	}
	creates := w.fake.CallsOf("CreatePartitionAndFormat")
	if len(creates) != 2 {
		t.Fatalf("%d CreatePartitionAndFormat calls", len(creates))
	}
	data := creates[1]
	fo, _ := data.Args[5].(map[string]dbus.Variant)
	if data.Args[4] != "ext4" || fo["label"].Value() != "TailsData" || fo["encrypt.type"].Value() != "luks2" || fo["encrypt.passphrase"].Value() != newPass {
		t.Errorf("Persistent Storage created with %v", data.Args)
	}
	// The helper's operations, in order, on the new Persistent Storage.
	if got := w.ops(t, n.uuid); !equalStrings(got, createOps) {
		t.Errorf("helper operations %v, want %v", got, createOps)
	}
	// Then the key slot, with the passphrase chosen, in the secret line alone.
	if reqs, secrets := keySlotRequests(t, w.record); len(reqs) != 1 || reqs[0]["backup"] != n.uuid || secrets[0] != newPass {
		t.Errorf("add-key-slot requests %v, secrets %d", reqs, len(secrets))
	}
	// Ejected, then paired.
	st, ok := loadStateFile(t, w.state)
	if !ok || len(st.Backups) != 1 {
		t.Fatalf("store %+v", st)
	}
	b := st.Backups[0]
	if b.UUID != n.uuid || b.Label != "Generic Flash Disk" || b.Size != 16<<30 || !b.Added.Equal(testNow) || !b.LastSuccess.Equal(testNow) {
		t.Errorf("pairing %+v", b)
	}
	if len(w.fake.CallsOf("PowerOff")) != 1 || w.fake.Exists(w.std.Other.Drive) {
		t.Error("the stick was not powered off")
	}
	if w.locked(w.std.Boot.LUKS) || len(w.fake.CallsOf("Unmount")) != 2 {
		t.Errorf("unmounts %v; boot stick locked %v", w.fake.CallsOf("Unmount"), w.locked(w.std.Boot.LUKS))
	}
	wantContains(t, "stdout", stdout,
		"[1/8] Erasing Generic Flash Disk (17.2 GB, /dev/sdc)...\n",
		"[3/8] Creating the encrypted Persistent Storage (this takes a minute)...\n",
		"[6/8] Copying the system of this Tails...\n      25%\n      50%\n      100%\n      Tails 6.10 - 20241203 copied.\n[7/8] Installing the boot loader for legacy BIOS computers...\n",
		"[8/8] Copying your Persistent Storage...\n      100%\n",
		"Your backup Tails is ready: you can unplug it.",
		"      Updates will not ask for the passphrase: a key kept in this Tails' Persistent Storage opens the backup.\n")
	if !b.KeySlot {
		t.Error("the key slot is not recorded")
	}
	if strings.Contains(stderr, "Warning") {
		t.Errorf("stderr %q", stderr)
	}
	wantContains(t, "pinentry log", readString(t, pinLog),
		"0: SETDESC Choose the passphrase of the Persistent Storage of your backup Tails on Generic Flash Disk (17.2 GB, /dev/sdc). We recommend the passphrase of this Tails",
		"0: SETPROMPT New passphrase of your backup Tails\n", "1: SETPROMPT New passphrase again\n",
		"1: SETDESC Type the passphrase of the Persistent Storage of your backup Tails on Generic Flash Disk (17.2 GB, /dev/sdc) again, to check it.")
}

func TestCreatePassphrase(t *testing.T) {
	tests := []struct {
		name       string
		answers    []string
		wantCode   int
		wantStderr string
		wantAsked  int
		wantError  string // in the pinentry log
	}{
		{"different, then the same", []string{"one", "two", "three", "three"}, 0, "", 4, "2: SETERROR The two passphrases were different. Type the passphrase again, twice."},
		{"empty, then given", []string{"", "four", "four"}, 0, "", 3, "1: SETERROR The passphrase is empty: type a passphrase."},
		{"different three times", []string{"a", "b", "c", "d", "e", "f"}, 1,
			"the two passphrases were different 3 times, so nothing was changed; run 'tails-backup create' again and type the same passphrase twice", 6, ""},
		{"cancelled the second time", []string{"a", "!cancel"}, 1, "the passphrase was not given, so nothing was changed", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newCreateWorld(t)
			pinLog := fakePinentry(t, w.pinentry, tt.answers...)
			code, _, stderr := w.create(t, "", "--yes", "/dev/sdc")
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d", code, tt.wantCode)
			}
			wantContains(t, "stderr", stderr, tt.wantStderr)
			log := readString(t, pinLog)
			if got := strings.Count(log, ": GETPIN"); got != tt.wantAsked {
				t.Errorf("%d passphrases asked, want %d", got, tt.wantAsked)
			}
			wantContains(t, "pinentry log", log, tt.wantError)
			if tt.wantCode != 0 {
				if got := w.writes(); len(got) != 0 {
					t.Errorf("udisks writes %v", got)
				}
				return
			}
			creates := w.fake.CallsOf("CreatePartitionAndFormat")
			fo, _ := creates[len(creates)-1].Args[5].(map[string]dbus.Variant)
			if last := tt.answers[len(tt.answers)-1]; fo["encrypt.passphrase"].Value() != last {
				t.Errorf("created with another passphrase than %q", last)
			}
		})
	}
}

// notFinished is the error of a creation that stopped after the stick was erased.
const notFinished = "tails-backup create: the backup Tails on Generic Flash Disk (17.2 GB, /dev/sdc) is not finished ("

func TestCreateHelperFailsMidway(t *testing.T) {
	for i, op := range createOps {
		t.Run(op, func(t *testing.T) {
			w := newCreateWorld(t)
			fakePinentry(t, w.pinentry, newPass)
			w.answer(op, `{"event":"error","code":"internal","message":"It broke."}`)
			code, stdout, stderr := w.create(t, "", "--yes", "/dev/sdc")
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			// A reason this session does not know: the sentence of the code, never the English message.
			wantContains(t, "stderr", stderr, notFinished, "failed: The backup tool's root helper stopped on an unexpected error. Try again, and report the bug if it happens again); run 'tails-backup create' again to start over\n")
			if strings.Contains(stdout, "ready") {
				t.Errorf("stdout %q", stdout)
			}
			n := w.made("sdc")
			if got := w.ops(t, n.uuid); !equalStrings(got, createOps[:i+1]) {
				t.Errorf("helper operations %v, want %v", got, createOps[:i+1])
			}
			// Not paired, left unmounted and locked, still plugged in to start again.
			if _, ok := loadStateFile(t, w.state); ok {
				t.Error("the store was written")
			}
			if !w.locked(n.luks) {
				t.Error("the new Persistent Storage was left unlocked")
			}
			if m, _ := w.fake.Get(n.system, iFS, "MountPoints").([][]byte); len(m) != 0 {
				t.Error("the system partition was left mounted")
			}
			if len(w.fake.CallsOf("PowerOff")) != 0 {
				t.Error("the stick was powered off")
			}

			// create starts over on it: it is now a Tails stick, not paired, that can be used.
			w.defaultAnswers()
			os.Remove(w.record)
			code, stdout, stderr = w.create(t, "", "--yes", "/dev/sdc")
			if code != 0 {
				t.Fatalf("second create: exit %d, stderr %q", code, stderr)
			}
			wantContains(t, "stdout", stdout, "  /dev/sdc   Generic Flash Disk, 17.2 GB, a Tails stick: can be used\n",
				"  partition 2: 8.6 GB, named \"TailsData\", encrypted (LUKS)\n")
			n2 := w.made("sdc")
			if n2.uuid == n.uuid {
				t.Error("the Persistent Storage was not made again")
			}
			st, ok := loadStateFile(t, w.state)
			if !ok || len(st.Backups) != 1 || st.Backups[0].UUID != n2.uuid {
				t.Errorf("store %+v", st)
			}
			if got := w.ops(t, n2.uuid); !equalStrings(got, createOps) {
				t.Errorf("helper operations %v", got)
			}
		})
	}
}

func TestCreateUdisksFails(t *testing.T) {
	tests := []struct {
		method   string
		wantText string
	}{
		{"Format", "erasing it failed: "},
		{"SetFlags", "creating its system partition failed: "},
		{"CreatePartitionAndFormat", "creating its system partition failed: "},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			w := newCreateWorld(t)
			fakePinentry(t, w.pinentry, newPass)
			w.fake.FailNext(tt.method, udiskstest.Failed("Error: no luck"))
			code, _, stderr := w.create(t, "", "--yes", "/dev/sdc")
			if code != 1 {
				t.Fatalf("exit %d", code)
			}
			wantContains(t, "stderr", stderr, notFinished+tt.wantText, "no luck")
			if helperRequests(t, w.record) != nil {
				t.Error("the helper was run")
			}
		})
	}
}

// TestCreateWarnings: a boot loader skipped and files not copied are warnings; the backup is
// paired all the same.
func TestCreateWarnings(t *testing.T) {
	w := newCreateWorld(t)
	fakePinentry(t, w.pinentry, newPass)
	w.answer("install-bootloader", `{"event":"done","report":{"bootloader":"skipped: no syslinux"}}`)
	w.answer("update", `{"event":"done","report":{"created":3,"error_count":1,"errors":[{"path":"x","op":"open","error":"EIO"}]}}`)
	code, stdout, stderr := w.create(t, "", "--yes", "/dev/sdc")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stderr", stderr, "Warning: the backup Tails starts only on computers with UEFI: its boot loader for legacy BIOS was not installed (no syslinux).\n",
		"Warning: 1 file could not be copied; the next update copies it, so plug in your backup Tails again later.\n")
	wantContains(t, "stdout", stdout, "Your backup Tails is ready")
	if st, ok := loadStateFile(t, w.state); !ok || len(st.Backups) != 1 {
		t.Error("not paired")
	}
}

// TestCreateInterrupted: Ctrl-C (the context ends) between two steps.
func TestCreateInterrupted(t *testing.T) {
	w := newCreateWorld(t)
	fakePinentry(t, w.pinentry, newPass)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sys1 := udiskstest.BlockPath("sdc1")
	w.fake.OnCall("Mount", func(c udiskstest.Call) *dbus.Error {
		if c.Path == sys1 {
			cancel()
		}
		return nil
	})
	var out, errb bytes.Buffer
	env := &environment{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, session: w.sys}
	code := run(ctx, env, []string{"create", "--yes", "--state", w.state, "--helper-command", w.helperCmd, "/dev/sdc"})
	t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	// Ctrl-C came during the mount: udisks' answer or the end of the context comes first.
	stderr := errb.String()
	if !strings.Contains(stderr, notFinished+"interrupted while opening its system partition); run 'tails-backup create' again to start over") &&
		!strings.Contains(stderr, notFinished+"interrupted while copying the system); run 'tails-backup create' again to start over") {
		t.Errorf("stderr %q", stderr)
	}
	n := w.made("sdc")
	if got := w.ops(t, n.uuid); !equalStrings(got, createOps[:2]) {
		t.Errorf("helper operations %v", got)
	}
	if _, ok := loadStateFile(t, w.state); ok {
		t.Error("the store was written")
	}
	if !w.locked(n.luks) {
		t.Error("left unlocked")
	}
	if m, _ := w.fake.Get(n.system, iFS, "MountPoints").([][]byte); len(m) != 0 {
		t.Error("the system partition was left mounted")
	}
}

func TestCreateReplacesTheBackup(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStderr string
	}{
		{"--yes is not enough", []string{"--yes", "/dev/sdb"}, "", 1,
			"Kingston DataTraveler (17.2 GB, /dev/sdb) is your backup Tails, so it was not erased; add --replace to erase it all the same"},
		{"--yes --replace", []string{"--yes", "--replace", "/dev/sdb"}, "", 0, ""},
		{"confirmed", []string{"/dev/sdb"}, "yes\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newCreateWorld(t)
			// The backup is open in the Files browser: create unmounts and locks it first.
			w.fake.Unplug(w.std.Backup.Drive)
			old := w.fake.AddStick(udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
				Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BackupPassphrase,
				LUKSUUID: backupUUID, MountedAt: "/media/amnesia/TailsData"})
			before := pairedState(2)
			before.Backups = append(before.Backups, pairing.PairedBackup{UUID: otherUUID, Label: "Samsung BAR Plus", Size: 32 << 30, Added: testNow})
			saveState(t, w.state, before)
			fakePinentry(t, w.pinentry, newPass)
			code, stdout, stderr := w.create(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d", code, tt.wantCode)
			}
			wantContains(t, "stdout", stdout, "This stick is your backup Tails: erasing it destroys that backup until the new one is ready.\n")
			wantContains(t, "stderr", stderr, tt.wantStderr)
			st, _ := loadStateFile(t, w.state)
			if tt.wantCode != 0 {
				if got := w.writes(); len(got) != 0 {
					t.Errorf("udisks writes %v", got)
				}
				if len(st.Backups) != 2 {
					t.Errorf("store changed: %+v", st)
				}
				return
			}
			// Unmounted and locked before the Format, then paired in place of the old one.
			writes := w.writes()
			if len(writes) < 3 || writes[0] != "Unmount "+string(old.Cleartext) || writes[1] != "Lock "+string(old.LUKS) || writes[2] != "Format "+string(old.Disk) {
				t.Errorf("udisks writes %v", writes)
			}
			n := w.made("sdb")
			if len(st.Backups) != 2 || st.IsPaired(backupUUID) || !st.IsPaired(n.uuid) || !st.IsPaired(otherUUID) {
				t.Errorf("store %+v", st)
			}
		})
	}
}

func TestCreateNeedsThisTailsPersistentStorage(t *testing.T) {
	w := newCreateWorld(t)
	w.sys.usedBytes = func(string) (uint64, error) { return 0, os.ErrNotExist }
	code, _, stderr := w.create(t, "", "--yes", "/dev/sdc")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stderr", stderr, "your Persistent Storage is not unlocked (file does not exist), so there is nothing to back up; restart Tails, unlock it in the Welcome Screen and run 'tails-backup create' again")
	if len(w.writes()) != 0 {
		t.Error("udisks writes")
	}
}

func TestCreateOnABackupTails(t *testing.T) {
	w := newCreateWorld(t)
	writeOwnMarker(t, w.sys, mainUUID)
	code, _, stderr := w.create(t, "", "--yes", "/dev/sdc")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stderr", stderr, "this Tails is itself a backup, so it does not make backups; if your main Tails is lost or broken, run 'tails-backup promote' first")
	if len(w.writes()) != 0 {
		t.Error("udisks writes")
	}
}

// TestCreateStickUnpluggedBeforeErasing: the stick goes away while the passphrase is typed.
func TestCreateStickUnpluggedBeforeErasing(t *testing.T) {
	w := newCreateWorld(t)
	fakePinentry(t, w.pinentry, newPass)
	// The second pinentry run (the check) is where the user unplugs it: the helper is
	// never run and nothing is written.
	w.fake.OnCall("Format", func(udiskstest.Call) *dbus.Error {
		t.Error("Format called")
		return nil
	})
	unplugAfterAsk(t, w)
	code, _, stderr := w.create(t, "", "--yes", "/dev/sdc")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stderr", stderr, "Generic Flash Disk (17.2 GB, /dev/sdc) was unplugged, so nothing was changed; plug it in again and run 'tails-backup create' again")
}

// unplugAfterAsk puts a script in front of the fake pinentry that, through a named pipe, has
// the test unplug the plain stick sdc when the passphrase is first asked; the next ask waits
// until it is done.
func unplugAfterAsk(t *testing.T, w *createWorld) {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "asked")
	script := filepath.Join(dir, "pinentry")
	writeFile(t, script, "#!/bin/sh\necho asked > '"+fifo+"'\nexec '"+w.pinentry+"'\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PINENTRY_PROGRAM", script)
	done := make(chan struct{})
	go func() {
		for first := true; ; first = false {
			f, err := os.Open(fifo) // until a pinentry starts
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, f)
			f.Close()
			select {
			case <-done:
				return
			default:
			}
			if first {
				w.fake.Unplug(w.std.Other.Drive)
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		// Wake the reader up if it waits for another pinentry.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}

func TestCreateUsage(t *testing.T) {
	code, stdout, _ := runCLI(t, "help")
	if code != 0 {
		t.Errorf("help: exit %d", code)
	}
	wantContains(t, "help", stdout, "create          erase a USB stick and make it a backup Tails of this Tails, paired")
	code, stdout, _ = runCLI(t, "create", "-h")
	if code != 0 || !strings.Contains(stdout, "usage: tails-backup create [--yes [--replace]] [--state FILE] [--helper-command CMD] [DEVICE]") {
		t.Errorf("create -h: exit %d, stdout %q", code, stdout)
	}
	code, _, stderr := runCLI(t, "create", "--no-such-flag")
	if code != 2 || !strings.Contains(stderr, "unknown option --no-such-flag") {
		t.Errorf("create --no-such-flag: exit %d, stderr %q", code, stderr)
	}
}

// TestCreateWithoutDrive: with no drive plugged in, create says so in one sentence and what to
// do, instead of an empty "Drives plugged in:" list.
func TestCreateWithoutDrive(t *testing.T) {
	var out bytes.Buffer
	printCreateCandidates(nil, &out, nil, createUsed)
	if out.Len() != 0 {
		t.Errorf("printed %q for no drive", out.String())
	}
	_, err := chooseCreateTarget(nil, nil, nil, "", createUsed)
	want := "no USB stick is plugged in: plug in the USB stick to make the backup on (at least 7.5 GB), then run 'tails-backup create' again"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

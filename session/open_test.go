package session

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/godbus/dbus/v5"

	"tails-backup/pinentry"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
)

// openWorld is a fake udisks2 with the boot stick and one backup stick, in the state spec says.
func openWorld(t *testing.T, spec udiskstest.StickSpec) (*udiskstest.Service, *udisks.Client, Stick) {
	t.Helper()
	addr := udiskstest.StartBus(t)
	fake := udiskstest.NewService(t, addr)
	fake.SetFilesystemDelay(0)
	fake.SetMountRoot(t.TempDir())
	fake.AddStick(udiskstest.StickSpec{Name: "sda", Vendor: "SanDisk", Model: "Cruzer", Removable: true, ConnectionBus: "usb",
		Tails: true, Passphrase: "boot", HintSystem: true, LUKSUUID: bootUUID, MountedAt: testBoot.Persistence, SystemMountedAt: testBoot.System})
	spec.Name, spec.Vendor, spec.Model, spec.Removable, spec.ConnectionBus, spec.Tails = "sdb", "Kingston", "DataTraveler", true, "usb", true
	spec.Passphrase, spec.LUKSUUID = udiskstest.BackupPassphrase, backupUUID
	fake.AddStick(spec)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	disks := udisks.New(conn, udisks.Options{Boot: testBoot})
	snap, err := disks.GetSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, err := PickStick(snap, testBoot, Candidates(snap, testBoot), "")
	if err != nil {
		t.Fatal(err)
	}
	return fake, disks, st
}

// methods lists the udisks2 calls made, by method name.
func methods(fake *udiskstest.Service) []string {
	var out []string
	for _, c := range fake.Calls() {
		out = append(out, c.Method)
	}
	return out
}

func TestOpened(t *testing.T) {
	right := pinentrytest.FakeAnswer{Pass: udiskstest.BackupPassphrase}
	wrong := pinentrytest.FakeAnswer{Pass: "wrong"}
	for _, tc := range []struct {
		name    string
		spec    udiskstest.StickSpec
		opts    OpenOptions
		answers []pinentrytest.FakeAnswer
		eject   bool
		asked   int
		err     error    // of Unlock
		calls   []string // udisks2 calls, in order, by the end
		ro      bool     // mounted read-only
	}{
		{name: "locked, update: unlocked, mounted, ejected", answers: []pinentrytest.FakeAnswer{right}, eject: true, asked: 1,
			calls: []string{"Unlock", "Mount", "Unmount", "Lock", "PowerOff"}},
		{name: "a wrong passphrase is asked again", answers: []pinentrytest.FakeAnswer{wrong, right}, asked: 2,
			calls: []string{"Unlock", "Unlock", "Mount", "Unmount", "Lock"}},
		{name: "three wrong passphrases", answers: []pinentrytest.FakeAnswer{wrong, wrong, wrong, right}, asked: 3,
			err: pinentry.ErrTooManyTries, calls: []string{"Unlock", "Unlock", "Unlock"}},
		{name: "cancelled", answers: nil, asked: 1, err: pinentry.ErrPinentryCancelled},
		{name: "read-only, left as found: what it opened is closed", answers: []pinentrytest.FakeAnswer{right}, asked: 1,
			opts: OpenOptions{ReadOnly: true, LeaveAsFound: true}, ro: true, calls: []string{"Unlock", "Mount", "Unmount", "Lock"}},
		{name: "already open, left as found: nothing asked, nothing closed",
			spec: udiskstest.StickSpec{MountedAt: "/media/amnesia/TailsData"}, opts: OpenOptions{ReadOnly: true, LeaveAsFound: true},
			ro: true, calls: []string{"Mount"}}, // udisks says AlreadyMounted: its mount is reused
		{name: "already unlocked, update: mounted, then unmounted and locked",
			spec: udiskstest.StickSpec{Unlocked: true}, calls: []string{"Mount", "Unmount", "Lock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, disks, st := openWorld(t, tc.spec)
			ctx := context.Background()
			asker := &pinentrytest.FakeAsker{Answers: tc.answers}
			o := NewOpened(disks, st, tc.opts)
			err := o.Unlock(ctx, Passphrase{Asker: asker, Prompt: pinentry.Prompt{Description: "Unlock it"}, Tries: 3, WrongText: "Wrong."})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Unlock = %v, want %v", err, tc.err)
				}
			} else {
				if err != nil {
					t.Fatalf("Unlock: %v", err)
				}
				root, err := o.Mount(ctx)
				if err != nil || root == "" || root != o.Root() {
					t.Fatalf("Mount = %q, %v (Root %q)", root, err, o.Root())
				}
			}
			if got := len(asker.Prompts()); got != tc.asked {
				t.Errorf("asked %d passphrases, want %d", got, tc.asked)
			}
			if p := asker.Prompts(); len(p) > 1 && p[1].Error != "Wrong." {
				t.Errorf("the second prompt says %q, want the wrong text", p[1].Error)
			}
			if tc.eject {
				err = o.Eject(ctx)
			} else {
				err = o.Release(ctx)
			}
			if err != nil {
				t.Fatalf("release: %v", err)
			}
			if err := o.Release(ctx); err != nil {
				t.Errorf("a second release: %v", err)
			}
			if got := methods(fake); !slices.Equal(got, tc.calls) {
				t.Errorf("udisks calls %q, want %q", got, tc.calls)
			}
			for _, c := range fake.CallsOf("Mount") {
				opts, _ := c.Options["options"].Value().(string)
				if want := map[bool]string{false: udisks.MountOptions, true: udisks.ReadOnlyMountOptions}[tc.ro]; opts != want {
					t.Errorf("mounted with %q, want %q", opts, want)
				}
			}
		})
	}
}

package sync_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// tailsPersistentStorage is a sample Tails Persistent Storage root with the owners, modes and
// ACLs Tails gives it.
func tailsPersistentStorage() []node {
	const amnesia, tps, tpsGroup = 1000, 115, 122
	u := func(p, data string) node {
		return node{Path: p, Type: 'f', Data: data, Uid: amnesia, Gid: amnesia, Mode: mode(0o600)}
	}
	d := func(p string) node { return node{Path: p, Type: 'd', Uid: amnesia, Gid: amnesia, Mode: mode(0o700)} }
	return []node{
		{Path: "persistence.conf", Type: 'f', Uid: tps, Gid: tpsGroup, Mode: mode(0o600),
			Data: "/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia/.gnupg\tsource=gnupg\n/etc/NetworkManager/system-connections\tsource=nm-system-connections\n/home/amnesia\tsource=dotfiles,link\n/var/cache/apt/archives\tsource=apt/cache\n"},
		d("dotfiles"),
		u("dotfiles/.bashrc", "export EDITOR=vim\n"),
		d("dotfiles/.config"),
		d("dotfiles/.config/app"),
		u("dotfiles/.config/app/settings.ini", "[main]\nfoo=bar\n"),
		{Path: "dotfiles/.profile-link", Type: 'l', Target: ".bashrc", Uid: amnesia, Gid: amnesia},
		d("Persistent"),
		u("Persistent/notes.txt", "remember the milk\n"),
		u("Persistent/Café ☕/résumé.odt", string(pattern(300*kib, 1))),
		d("Persistent/Café ☕"),
		{Path: "Persistent/vm.img", Type: 'f', Uid: amnesia, Gid: amnesia, Mode: mode(0o600),
			Chunks: []chunk{{0, pattern(64*kib, 2)}, {40 * mib, pattern(4*kib, 3)}}, Size: 64 * mib},
		u("Persistent/photo.jpg", string(pattern(2*mib, 4))),
		{Path: "Persistent/photo-hardlink.jpg", Type: 'h', Target: "Persistent/photo.jpg"},
		{Path: "Persistent/Tor Browser", Type: 'l', Target: "/home/amnesia/Persistent/Tor Browser (persistent)", Uid: amnesia, Gid: amnesia},
		{Path: "nm-system-connections", Type: 'd', Mode: mode(0o700)},
		{Path: "nm-system-connections/Home WiFi.nmconnection", Type: 'f', Mode: mode(0o600), Data: "[wifi-security]\npsk=hunter2\n"},
		{Path: "nm-system-connections/Café.nmconnection", Type: 'f', Mode: mode(0o600), Data: "[wifi]\nssid=Café\n"},
		d("gnupg"),
		u("gnupg/pubring.kbx", string(pattern(40*kib, 5))),
		u("gnupg/trustdb.gpg", string(pattern(1200, 6))),
		d("gnupg/private-keys-v1.d"),
		u("gnupg/private-keys-v1.d/0123456789ABCDEF.key", "(private-key ...)"),
		{Path: "gnupg/S.gpg-agent", Type: 's', Uid: amnesia, Gid: amnesia, Mode: mode(0o700)},
		{Path: "apt/cache/tor_0.4.8_amd64.deb", Type: 'f', Data: string(pattern(500*kib, 7)), Mtime: t1},
		{Path: "apt/lists/deb.debian.org_InRelease", Type: 'f', Data: "Origin: Debian\n", Mtime: t2},
		{Path: "electrum/wallets/default_wallet", Type: 'f', Uid: amnesia, Gid: amnesia, Mode: mode(0o600), Data: "{}"},
		{Path: "electrum", Type: 'd', Uid: amnesia, Gid: amnesia, Mode: mode(0o700), Xattrs: map[string]string{"user.tails": "feature"}},
		{Path: ".", Type: 'd', Mode: mode(0o770), ACL: "u:1000:--x"},
	}
}

// TestMirrorTailsPersistentStorage mirrors a sample Persistent Storage onto a backup that holds
// its marker, then mirrors a week of changes: both times rsync and our comparison agree the copy
// is exact (root ACL, 115:122 persistence.conf, stripped modes, socket, sparse VM image,
// hard links), the marker is untouched, the source is untouched and the second run changes
// nothing; with the default workers and with one.
func TestMirrorTailsPersistentStorage(t *testing.T) {
	parallel(t)
	for _, workers := range []int{0, 1} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { testTails(t, workers) })
	}
}

func testTails(t *testing.T, workers int) {
	src := newExt4(t, 64)
	dst := newExt4(t, 64)
	build(t, src, tailsPersistentStorage()...)
	marker := node{Path: ".tails-backup.json", Type: 'f', Mode: mode(0o600), Data: `{"source":"luks-uuid","state":"complete"}`, Mtime: t3}
	build(t, dst, marker)
	opts := sync.Options{Exclude: []string{".tails-backup.json"}, Workers: workers}
	srcBefore := snapshot(t, src)
	mirror(t, src, dst, opts)
	assertUnchanged(t, "the source (after mirroring it)", srcBefore, src, cmpOpts{inodes: true})
	if st := lstat(t, filepath.Join(dst, "persistence.conf")); st.Uid != 115 || st.Gid != 122 || st.Mode&0o7777 != 0o600 {
		t.Errorf("persistence.conf: %d:%d %#o, want 115:122 0600", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if st := lstat(t, filepath.Join(dst, "Persistent/vm.img")); st.Blocks*512 > 1*mib {
		t.Errorf("Persistent/vm.img: %d bytes of blocks for 68 KiB of data: holes were not kept", st.Blocks*512)
	}

	// A week later.
	build(t, src,
		node{Path: "Persistent/new document.txt", Type: 'f', Uid: 1000, Gid: 1000, Mode: mode(0o600), Data: "new"},
		node{Path: "Persistent/notes.txt", Type: 'f', Uid: 1000, Gid: 1000, Mode: mode(0o600), Data: "remember the milk and the eggs\n", Mtime: time.Now()},
	)
	rm(t, src, "Persistent/Café ☕/résumé.odt", "apt/cache/tor_0.4.8_amd64.deb")
	must(t, os.Rename(filepath.Join(src, "gnupg/private-keys-v1.d"), filepath.Join(src, "gnupg/private-keys-v2.d")))
	must(t, unix.Chmod(filepath.Join(src, "nm-system-connections/Café.nmconnection"), 0o640))
	rep := mirror(t, src, dst, opts)
	if rep.Deleted == 0 || rep.Created == 0 || rep.Updated == 0 || rep.MetadataOnly == 0 {
		t.Errorf("a week of changes: %s", fmtReport(rep))
	}
	if got := string(readFile(t, filepath.Join(dst, ".tails-backup.json"))); got != marker.Data {
		t.Errorf("the marker changed: %q", got)
	}
}

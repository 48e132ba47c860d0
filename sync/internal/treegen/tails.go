package treegen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Owners on a Tails Persistent Storage (TAILS-FACTS.md).
var (
	ownerRoot       = owner{0, 0}
	ownerAmnesia    = owner{1000, 1000}
	ownerPersistent = owner{115, 122} // tails-persistent-storage
)

// TailsBinding is one line of persistence.conf: a feature folder and where Tails mounts it.
type TailsBinding struct {
	Destination string // where the folder appears in the running Tails
	Source      string // folder relative to the Persistent Storage root
	Link        bool   // "link": each file is symlinked into Destination (dotfiles)
}

// Line is the binding as persistence.conf spells it: destination, a tab, then the options.
func (b TailsBinding) Line() string {
	opts := "source=" + b.Source
	if b.Link {
		opts += ",link"
	}
	return b.Destination + "\t" + opts
}

// TailsBindings are the features of the sample, in the order of its persistence.conf.
func TailsBindings() []TailsBinding {
	return []TailsBinding{
		{"/home/amnesia/Persistent", "Persistent", false},
		{"/home/amnesia/.mozilla/firefox/bookmarks", "bookmarks", false},
		{"/var/lib/gdm3/settings/persistent", "greeter-settings", false},
		{"/etc/NetworkManager/system-connections", "nm-system-connections", false},
		{"/var/lib/tca", "tca", false},
		{"/var/cache/apt/archives", "apt/cache", false},
		{"/var/lib/apt/lists", "apt/lists", false},
		{"/home/amnesia/.thunderbird", "thunderbird", false},
		{"/home/amnesia/.gnupg", "gnupg", false},
		{"/home/amnesia/.electrum", "electrum", false},
		{"/home/amnesia/.ssh", "openssh-client", false},
		{"/home/amnesia", "dotfiles", true},
	}
}

// TailsRootACL is the access ACL of the Persistent Storage root: owner and group rwx, amnesia may
// only traverse (user:1000:--x), with the mask setfacl computes (rwx), nothing for others.
func TailsRootACL() []ACLEntry {
	return aclWithMask(7, 7, 0, ACLEntry{Tag: ACLUser, ID: 1000, Perm: 1})
}

// TailsPersistenceConf is the content of the sample's persistence.conf.
func TailsPersistenceConf() string {
	var b strings.Builder
	for _, f := range TailsBindings() {
		b.WriteString(f.Line() + "\n")
	}
	return b.String()
}

// TailsSample fills dir, the root of a (normally fresh, ext4) file system, with a realistic Tails
// Persistent Storage of about 50 MiB that follows TAILS-FACTS.md: root 0770 root:root with the ACL
// user:1000:--x, persistence.conf and its .bak 0600 115:122, live-additional-software.conf 0644
// 115:122, amnesia's feature folders 1000:1000 with group and other bits stripped, root-owned
// nm-system-connections (0700, files 0600), apt, tca and greeter-settings; a hard link, a symlink,
// a sparse VM image and xattrs on downloads. It is deterministic.
func TailsSample(dir string) error {
	s := newSample()
	s.config()
	s.persistent()
	s.thunderbird()
	s.secrets()
	s.system()
	if err := s.t.write(context.Background(), dir); err != nil {
		return fmt.Errorf("tails sample in %s: %w", dir, err)
	}
	return nil
}

// sample builds the Tails tree; its clock advances with each entry so that mtimes differ.
type sample struct {
	t     tree
	rng   *rand.Rand
	clock time.Time
}

func newSample() *sample {
	s := &sample{rng: rand.New(rand.NewPCG(6, 0x7461696c73)), clock: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}
	s.t.root = meta{uid: 0, gid: 0, mode: 0o770, acl: TailsRootACL()}
	return s
}

// tick returns the next mtime: a few minutes to a few days later, with nanoseconds.
func (s *sample) tick() time.Time {
	s.clock = s.clock.Add(time.Duration(s.rng.Int64N(int64(72*time.Hour))) + time.Minute)
	return s.clock
}

func (s *sample) meta(o owner, mode uint32) meta {
	return meta{uid: o.uid, gid: o.gid, mode: mode, mtime: s.tick()}
}

func (s *sample) dir(path string, o owner, mode uint32) {
	s.t.dirs = append(s.t.dirs, entry{path: path, kind: kindDir, meta: s.meta(o, mode)})
}

func (s *sample) text(path string, o owner, mode uint32, content string) *entry {
	s.t.files = append(s.t.files, entry{path: path, kind: kindFile, data: []byte(content), size: int64(len(content)),
		meta: s.meta(o, mode)})
	return &s.t.files[len(s.t.files)-1]
}

func (s *sample) random(path string, o owner, mode uint32, size int64) *entry {
	s.t.files = append(s.t.files, entry{path: path, kind: kindFile, size: size, content: s.rng.Uint64(),
		meta: s.meta(o, mode)})
	return &s.t.files[len(s.t.files)-1]
}

func (s *sample) symlink(path, target string, o owner) {
	s.t.files = append(s.t.files, entry{path: path, kind: kindSymlink, target: target, meta: s.meta(o, 0o777)})
}

func (s *sample) hardlink(path, target string) {
	s.t.files = append(s.t.files, entry{path: path, kind: kindHardlink, target: target})
}

// config writes the files of the tails-persistent-storage service at the root.
func (s *sample) config() {
	conf := TailsPersistenceConf()
	s.text("persistence.conf", ownerPersistent, 0o600, conf)
	s.text("persistence.conf.bak", ownerPersistent, 0o600, conf)
	s.text("live-additional-software.conf", ownerPersistent, 0o644, "keepassxc\nmat2\nsqlitebrowser\n")
}

// persistent is the Persistent folder: documents, photos, downloads, a sparse VM disk.
func (s *sample) persistent() {
	a := ownerAmnesia
	s.dir("Persistent", a, 0o700)
	s.dir("Persistent/Documents", a, 0o700)
	s.dir("Persistent/Pictures", a, 0o700)
	s.dir("Persistent/Downloads", a, 0o700)
	s.dir("Persistent/Archive", a, 0o700)
	s.dir("Persistent/VMs", a, 0o700)
	s.text("Persistent/Documents/notes.txt", a, 0o600, s.prose(40))
	s.text("Persistent/Documents/Meeting notes – été 2024.md", a, 0o600, s.prose(25))
	s.random("Persistent/Documents/letter.odt", a, 0o600, 31*kib+17)
	s.random("Persistent/Documents/budget.ods", a, 0o600, 19*kib+5)
	s.random("Persistent/Documents/report-2023.pdf", a, 0o600, 412*kib+3)
	s.random("Persistent/Documents/empty.txt", a, 0o600, 0)
	for i := 1; i <= 6; i++ {
		s.random(fmt.Sprintf("Persistent/Pictures/IMG_%04d.jpg", 2400+i), a, 0o600, 3*mib+s.rng.Int64N(2*mib))
	}
	s.hardlink("Persistent/Archive/report-2023-final.pdf", "Persistent/Documents/report-2023.pdf")
	key := s.random("Persistent/Downloads/tails-signing.key", a, 0o600, 104*kib+11)
	key.xattrs = []xattr{
		{"user.xdg.origin.url", []byte("https://tails.net/tails-signing.key")},
		{"user.xdg.referrer.url", []byte("https://tails.net/install/download/")},
	}
	inv := s.random("Persistent/Downloads/old-invoice.pdf", a, 0o600, 88*kib)
	inv.xattrs = []xattr{{"user.xdg.origin.url", []byte("https://shop.example.org/invoice/2024-0142.pdf")}}
	vm := entry{path: "Persistent/VMs/debian-12.img", kind: kindSparse, size: 256 * mib, content: s.rng.Uint64(),
		extents: []extent{{0, 2 * mib}, {64 * mib, 1 * mib}, {130 * mib, 2 * mib}, {255 * mib, 1 * mib}},
		meta:    s.meta(a, 0o600)}
	s.t.files = append(s.t.files, vm)
}

// thunderbird is a profile with IMAP and local mailboxes.
func (s *sample) thunderbird() {
	a := ownerAmnesia
	p := "thunderbird/profile.default"
	for _, d := range []string{"thunderbird", p, p + "/Mail", p + "/Mail/Local Folders", p + "/ImapMail",
		p + "/ImapMail/imap.riseup.net"} {
		s.dir(d, a, 0o700)
	}
	s.text("thunderbird/profiles.ini", a, 0o600,
		"[Profile0]\nName=default\nIsRelative=1\nPath=profile.default\nDefault=1\n\n[General]\nStartWithLastProfile=1\n")
	s.text(p+"/prefs.js", a, 0o600, strings.Join([]string{
		`// Mozilla User Preferences`,
		`user_pref("mail.account.account1.server", "server1");`,
		`user_pref("mail.identity.id1.useremail", "amnesia@riseup.net");`,
		`user_pref("mail.server.server1.hostname", "imap.riseup.net");`,
		`user_pref("mail.server.server1.socketType", 3);`,
		`user_pref("network.proxy.socks_remote_dns", true);`, ""}, "\n"))
	s.text(p+"/ImapMail/imap.riseup.net/INBOX", a, 0o600, s.mbox(250))
	s.random(p+"/ImapMail/imap.riseup.net/INBOX.msf", a, 0o600, 96*kib)
	s.text(p+"/ImapMail/imap.riseup.net/Sent", a, 0o600, s.mbox(60))
	s.text(p+"/Mail/Local Folders/Drafts", a, 0o600, s.mbox(5))
	s.text(p+"/Mail/Local Folders/Trash", a, 0o600, "")
}

// secrets are gnupg, openssh-client, electrum and bookmarks, all amnesia's and private.
func (s *sample) secrets() {
	a := ownerAmnesia
	for _, d := range []string{"gnupg", "gnupg/private-keys-v1.d", "gnupg/openpgp-revocs.d", "openssh-client",
		"electrum", "electrum/wallets", "bookmarks", "dotfiles", "dotfiles/.config", "dotfiles/.config/vim"} {
		s.dir(d, a, 0o700)
	}
	s.random("gnupg/pubring.kbx", a, 0o600, 38*kib+420)
	s.random("gnupg/trustdb.gpg", a, 0o600, 1280)
	for i := 0; i < 2; i++ {
		grip := fmt.Sprintf("%016X%016X%08X", s.rng.Uint64(), s.rng.Uint64(), s.rng.Uint32())
		s.text("gnupg/private-keys-v1.d/"+grip+".key", a, 0o600,
			"Created: 20240301T090000\nKey: (private-key (ecc (curve Ed25519)(flags eddsa)(q #40...#)(d #...#)))\n")
	}
	s.text("gnupg/openpgp-revocs.d/3B1F0E1D5A8C7A3C0E4B9E71A2C4D6E8F0A1B2C3.rev", a, 0o600,
		"This is a revocation certificate for the OpenPGP key:\n")
	s.text("openssh-client/id_ed25519", a, 0o600,
		"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n")
	s.text("openssh-client/id_ed25519.pub", a, 0o600, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG7Rm amnesia@amnesia\n")
	s.text("openssh-client/known_hosts", a, 0o600, "|1|pQq2Ydl4Y3F2vCk=|Zm9vYmFy= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm\n")
	s.text("openssh-client/config", a, 0o600, "Host git.example.org\n  User git\n  IdentityFile ~/.ssh/id_ed25519\n")
	s.text("electrum/config", a, 0o600, "{\n    \"auto_connect\": true,\n    \"proxy\": \"socks5:localhost:9050::\"\n}\n")
	s.random("electrum/wallets/default_wallet", a, 0o600, 27*kib+321)
	s.random("bookmarks/places.sqlite", a, 0o600, 2*mib)
	s.random("bookmarks/favicons.sqlite", a, 0o600, 640*kib)
	s.text("dotfiles/.bashrc", a, 0o600, "# ~/.bashrc, kept by the dotfiles feature\nexport EDITOR=vim\nalias ll='ls -l'\n")
	s.text("dotfiles/.gitconfig", a, 0o600, "[user]\n\tname = Amnesia\n\temail = amnesia@riseup.net\n")
	s.text("dotfiles/.config/vim/vimrc", a, 0o600, "set number\nsyntax on\n")
	s.symlink("dotfiles/.vimrc", ".config/vim/vimrc", a)
}

// system is what root owns: Wi-Fi connections, apt caches, Tor connection and greeter settings.
// The owners and modes of apt, tca and greeter-settings are not in TAILS-FACTS.md: root and the
// modes Debian gives their mount points are assumed.
func (s *sample) system() {
	r := ownerRoot
	s.dir("nm-system-connections", r, 0o700)
	s.text("nm-system-connections/Home WiFi.nmconnection", r, 0o600, nmConnection("Home WiFi", "correct horse battery staple"))
	s.text("nm-system-connections/Café Libre.nmconnection", r, 0o600, nmConnection("Café Libre", "espresso-2024"))
	for _, d := range []string{"apt", "apt/cache", "apt/lists"} {
		s.dir(d, r, 0o755)
	}
	s.dir("apt/cache/partial", r, 0o700)
	s.dir("apt/lists/partial", r, 0o700)
	for _, deb := range []string{"keepassxc_2.7.4+dfsg.1-2_amd64.deb", "mat2_0.13.3-1_all.deb",
		"sqlitebrowser_3.12.2-2_amd64.deb", "libqt5sql5-sqlite_5.15.8+dfsg-11_amd64.deb"} {
		s.random("apt/cache/"+deb, r, 0o644, 900*kib+s.rng.Int64N(mib))
	}
	s.random("apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", r, 0o644, 151*kib)
	s.random("apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4", r, 0o644, 3*mib)
	s.text("apt/lists/lock", r, 0o640, "")
	s.dir("tca", r, 0o700)
	s.text("tca/tca.conf", r, 0o600, "{\"ui\": {\"hide\": {\"bridge\": false}}, \"tor\": {\"bridges\": []}}\n")
	s.dir("greeter-settings", r, 0o700)
	s.text("greeter-settings/tails.formats", r, 0o600, "TAILS_FORMATS=fr_FR\n")
	s.text("greeter-settings/tails.language", r, 0o600, "TAILS_LOCALE_NAME=fr_FR\n")
	s.text("greeter-settings/tails.keyboard", r, 0o600, "TAILS_XKBLAYOUT=fr\nTAILS_XKBVARIANT=\n")
}

// NMConnection returns a NetworkManager keyfile for a WPA-PSK Wi-Fi network.
func nmConnection(ssid, psk string) string {
	return fmt.Sprintf("[connection]\nid=%s\ntype=wifi\n\n[wifi]\nmode=infrastructure\nssid=%s\n\n"+
		"[wifi-security]\nkey-mgmt=wpa-psk\npsk=%s\n\n[ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n",
		ssid, ssid, psk)
}

var proseWords = strings.Fields(`the of and to in a is that for it as was with be by on not he this are
	or his from at which but have an they you were her she there been one all we their has would when
	meeting tor bridge journalist source document draft review encrypted backup stick persistent`)

// prose returns n lines of plausible text.
func (s *sample) prose(lines int) string {
	var b strings.Builder
	for i := 0; i < lines; i++ {
		for w := 8 + s.rng.IntN(8); w > 0; w-- {
			b.WriteString(proseWords[s.rng.IntN(len(proseWords))])
			if w > 1 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(".\n")
	}
	return b.String()
}

// mbox returns n plausible messages in mbox format.
func (s *sample) mbox(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		s.mail(&b, i)
	}
	return b.String()
}

func (s *sample) mail(b *strings.Builder, i int) {
	when := s.clock.Add(-time.Duration(s.rng.Int64N(int64(200 * 24 * time.Hour))))
	from := []string{"alice@example.org", "bob@riseup.net", "newsletter@eff.org", "editor@example.net"}[s.rng.IntN(4)]
	fmt.Fprintf(b, "From %s %s\nFrom: %s\nTo: amnesia@riseup.net\nSubject: message %d\nDate: %s\nMessage-ID: <%x@example.org>\n\n%s\n",
		from, when.Format("Mon Jan _2 15:04:05 2006"), from, i, when.Format(time.RFC1123Z), s.rng.Uint64(), s.prose(20+s.rng.IntN(60)))
}

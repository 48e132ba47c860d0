package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The content of a realistic Persistent Storage, made by fillUser; change alters it like a
// week of use.

// fillCmd: fill ROOT (a mounted Persistent Storage) with a realistic user's data.
func fillCmd(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: fill ROOT")
	}
	return fillUser(ctx, args[0])
}

type filler struct {
	root string
	rnd  *rand.Rand
}

func (f *filler) path(rel string) string { return filepath.Join(f.root, rel) }

func (f *filler) random(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= len(b); i += 8 {
		v := f.rnd.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// file writes rel with content, mode and owner (amnesia unless uid says otherwise).
func (f *filler) file(rel string, content []byte, mode os.FileMode, uid, gid int) error {
	p := f.path(rel)
	if err := f.dirs(filepath.Dir(rel), uid, gid); err != nil {
		return err
	}
	if err := os.WriteFile(p, content, mode); err != nil {
		return err
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Lchown(p, uid, gid)
}

// dirs makes the folders of rel that are missing, 0700, owned by uid.
func (f *filler) dirs(rel string, uid, gid int) error {
	if rel == "." || rel == "" {
		return nil
	}
	if err := f.dirs(filepath.Dir(rel), uid, gid); err != nil {
		return err
	}
	p := f.path(rel)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		return err
	}
	return os.Lchown(p, uid, gid)
}

func (f *filler) text(rel, s string) error {
	return f.file(rel, []byte(s), 0o600, amnesiaUID, amnesiaUID)
}

func (f *filler) blob(rel string, n int) error {
	return f.file(rel, f.random(n), 0o600, amnesiaUID, amnesiaUID)
}

func (f *filler) symlink(target, rel string) error {
	p := f.path(rel)
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		return err
	}
	return os.Lchown(p, amnesiaUID, amnesiaUID)
}

func fillUser(ctx context.Context, root string) error {
	f := &filler{root: root, rnd: rand.New(rand.NewPCG(1, 2))}
	const a = amnesiaUID
	steps := []func() error{
		// Additional Software, owned by tails-persistent-storage.
		func() error {
			return f.file("live-additional-software.conf", []byte("mat2\nkeepassxc\n"), 0o644, tpsUID, tpsGID)
		},
		// Wi-Fi passwords: root only.
		func() error {
			if err := f.dirs("nm-system-connections", 0, 0); err != nil {
				return err
			}
			for _, n := range []string{"Home WiFi", "Café du Coin", "Library"} {
				c := fmt.Sprintf("[connection]\nid=%s\ntype=wifi\n[wifi]\nssid=%s\n[wifi-security]\nkey-mgmt=wpa-psk\npsk=%x\n", n, n, f.random(8))
				if err := f.file("nm-system-connections/"+n+".nmconnection", []byte(c), 0o600, 0, 0); err != nil {
					return err
				}
			}
			return nil
		},
		// A Thunderbird profile: many small files, a few larger mail folders.
		func() error {
			if err := f.text("thunderbird/profiles.ini", "[Profile0]\nName=default\nIsRelative=1\nPath=profile.default\nDefault=1\n"); err != nil {
				return err
			}
			p := "thunderbird/profile.default/"
			if err := f.text(p+"prefs.js", "user_pref(\"mail.server.server1.hostname\", \"imap.example.org\");\n"); err != nil {
				return err
			}
			for _, n := range []string{"Mail/Local Folders/Inbox", "ImapMail/imap.example.org/INBOX", "ImapMail/imap.example.org/Sent"} {
				if err := f.blob(p+n, 1<<20+f.rnd.IntN(2<<20)); err != nil {
					return err
				}
			}
			if err := f.blob(p+"global-messages-db.sqlite", 3<<20); err != nil {
				return err
			}
			for i := range 150 {
				if err := f.blob(fmt.Sprintf("%scache2/entries/%040X", p, f.rnd.Uint64()+uint64(i)), 512+f.rnd.IntN(8<<10)); err != nil {
					return err
				}
			}
			return nil
		},
		// GnuPG: keys in folders and files of their own modes.
		func() error {
			if err := f.blob("gnupg/pubring.kbx", 40<<10); err != nil {
				return err
			}
			if err := f.blob("gnupg/trustdb.gpg", 1200); err != nil {
				return err
			}
			if err := f.text("gnupg/gpg.conf", "keyserver-options no-honor-keyserver-url\n"); err != nil {
				return err
			}
			for i := range 2 {
				if err := f.blob(fmt.Sprintf("gnupg/private-keys-v1.d/%040X.key", f.rnd.Uint64()+uint64(i)), 1500); err != nil {
					return err
				}
			}
			return nil
		},
		// Dotfiles, linked into the home folder.
		func() error {
			if err := f.text("dotfiles/.bashrc", "alias ll='ls -l'\nexport EDITOR=vim\n"); err != nil {
				return err
			}
			return f.text("dotfiles/.config/hexchat/hexchat.conf", "irc_nick1 = amnesia\n")
		},
		// The Persistent Folder: documents, photos, a big sparse disk image, hard links,
		// symbolic links, ACLs and extended attributes, names in several scripts.
		func() error {
			if err := f.text("Persistent/Documents/notes.txt", "Meeting on Tuesday.\n"); err != nil {
				return err
			}
			if err := f.blob("Persistent/Documents/report.odt", 300<<10); err != nil {
				return err
			}
			if err := f.text("Persistent/Документы/résumé 2024.txt", "Curriculum vitae\n"); err != nil {
				return err
			}
			for i := range 20 {
				if err := f.blob(fmt.Sprintf("Persistent/Photos/IMG_%04d.jpg", 1000+i), 150<<10+f.rnd.IntN(300<<10)); err != nil {
					return err
				}
			}
			// Hard links: the same report under two names, a photo under three.
			if err := os.Link(f.path("Persistent/Documents/report.odt"), f.path("Persistent/Documents/report (copy).odt")); err != nil {
				return err
			}
			if err := f.dirs("Persistent/Albums/Summer", a, a); err != nil {
				return err
			}
			for _, n := range []string{"Persistent/Albums/Summer/beach.jpg", "Persistent/Albums/best.jpg"} {
				if err := os.Link(f.path("Persistent/Photos/IMG_1003.jpg"), f.path(n)); err != nil {
					return err
				}
			}
			if err := f.symlink("Documents/notes.txt", "Persistent/latest-notes"); err != nil {
				return err
			}
			if err := f.symlink("/home/amnesia/Persistent/Photos", "Persistent/Albums/all-photos"); err != nil {
				return err
			}
			if err := f.symlink("../gone/file", "Persistent/Documents/dangling"); err != nil {
				return err
			}
			// A 1 GiB virtual disk, three MiB of it written.
			img := f.path("Persistent/vm-disk.img")
			if err := f.text("Persistent/vm-disk.img", ""); err != nil {
				return err
			}
			fd, err := os.OpenFile(img, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer fd.Close()
			for _, off := range []int64{0, 500 << 20, 1<<30 - 1<<20} {
				if _, err := fd.WriteAt(f.random(1<<20), off); err != nil {
					return err
				}
			}
			if err := fd.Close(); err != nil {
				return err
			}
			if err := unix.Lsetxattr(f.path("Persistent/Photos/IMG_1001.jpg"), "user.xdg.origin.url", []byte("https://example.org/photo"), 0); err != nil {
				return err
			}
			if err := unix.Lsetxattr(f.path("Persistent/Documents/report.odt"), "user.comment", []byte("final version"), 0); err != nil {
				return err
			}
			if err := f.dirs("Persistent/Shared", a, a); err != nil {
				return err
			}
			if err := f.text("Persistent/Shared/readme.txt", "shared with the group\n"); err != nil {
				return err
			}
			if err := runCmd(ctx, nil, "setfacl", "-m", "u:tails-persistent-storage:rx,m::rx", f.path("Persistent/Shared")); err != nil {
				return err
			}
			return runCmd(ctx, nil, "setfacl", "-d", "-m", "u:tails-persistent-storage:r", f.path("Persistent/Shared"))
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// changeCmd alters a filled Persistent Storage like a week of use: new, changed, deleted and
// renamed files, changed metadata, and optionally a big new file, a week's APT lists (an apt
// update of Additional Software rewrites them) and many small mail files (Thunderbird's
// message cache).
//
//	change [--seed N] [--big BYTES] [--apt FILES] [--mail FILES] ROOT
func changeCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("change", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "varies the changes")
	big := fs.Int("big", 0, "also write a new file of this many bytes")
	apt := fs.Int("apt", 0, "also write this many APT lists (1 KiB to 256 KiB), replacing last week's")
	mail := fs.Int("mail", 0, "also write this many new small files of Thunderbird's message cache (1 to 16 KiB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: change [--seed N] [--big BYTES] [--apt FILES] [--mail FILES] ROOT")
	}
	f := &filler{root: fs.Arg(0), rnd: rand.New(rand.NewPCG(*seed, 99))}
	n := *seed
	steps := []func() error{
		func() error { // new mail, a changed index
			return appendTo(f.path("thunderbird/profile.default/ImapMail/imap.example.org/INBOX"), f.random(200<<10))
		},
		func() error { return f.blob("thunderbird/profile.default/global-messages-db.sqlite", 3<<20) },
		func() error {
			return f.text(fmt.Sprintf("Persistent/Documents/week-%d.txt", n), "What happened this week.\n")
		},
		func() error { return f.blob(fmt.Sprintf("Persistent/Photos/IMG_%04d.jpg", 2000+n), 400<<10) },
		func() error { return os.Remove(f.path(fmt.Sprintf("Persistent/Photos/IMG_%04d.jpg", 1010+n))) },
		func() error { return os.Chmod(f.path("Persistent/Documents/notes.txt"), 0o640) },
		func() error {
			return unix.Lsetxattr(f.path("Persistent/Documents/report.odt"), "user.comment", []byte(fmt.Sprintf("version %d", n)), 0)
		},
		func() error { return f.symlink(fmt.Sprintf("Documents/week-%d.txt", n), "Persistent/latest-notes") },
		func() error {
			return os.Link(f.path(fmt.Sprintf("Persistent/Documents/week-%d.txt", n)), f.path(fmt.Sprintf("Persistent/Albums/week-%d-link.txt", n)))
		},
		func() error {
			c := fmt.Sprintf("[connection]\nid=Hotel %d\ntype=wifi\n", n)
			return f.file(fmt.Sprintf("nm-system-connections/Hotel %d.nmconnection", n), []byte(c), 0o600, 0, 0)
		},
		func() error {
			return f.text("dotfiles/.bashrc", fmt.Sprintf("alias ll='ls -l'\nexport EDITOR=vim\n# week %d\n", n))
		},
	}
	if *big > 0 {
		steps = append(steps, func() error { return f.blob(fmt.Sprintf("Persistent/Videos/holiday-%d.mkv", n), *big) })
	}
	if *apt > 0 {
		// Tails keeps Additional Software's lists in apt/lists, owned by root; each apt update
		// replaces them with the mirror's new ones, under the same names.
		steps = append(steps, func() error {
			if err := f.dirs("apt/lists", 0, 0); err != nil {
				return err
			}
			for i := range *apt {
				name := fmt.Sprintf("apt/lists/deb.debian.org_debian_dists_suite_part%04d_Packages", i)
				if err := f.file(name, f.random(1<<10+f.rnd.IntN(255<<10)), 0o644, 0, 0); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if *mail > 0 {
		steps = append(steps, func() error {
			for i := range *mail {
				name := fmt.Sprintf("thunderbird/profile.default/cache2/entries/W%03d%036X", n, uint64(i)<<20|f.rnd.Uint64()>>44)
				if err := f.blob(name, 1<<10+f.rnd.IntN(15<<10)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func appendTo(path string, data []byte) error {
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := fd.Write(data); err != nil {
		fd.Close()
		return err
	}
	return fd.Close()
}

# tails-backup. Targets: build, test, bench, demo, demo-sync, e2e, lint, deb. test, bench, demo and e2e
# install what they need (Debian packages, Go modules) and must run as root: the tests mount ext4
# images, e2e and demo run a QEMU guest.
GO ?= go
BIN := bin/tails-backup
# Extra flags of `go build` (debian/rules asks for a hardened PIE binary this way).
GOBUILDFLAGS ?=

.PHONY: all build test bench demo demo-sync e2e e2e-image e2e-bench lint fuzz clean deb screenshots pot mo

all: build

build: mo
	$(GO) build $(GOBUILDFLAGS) -o $(BIN) ./cmd/tails-backup

# Translations (po/, issue 14): one gettext domain, tails-backup, for the Go code and the app.
# LINGUAS are the catalogs po/<lang>.po; each is compiled, checked (msgfmt -c: headers, plural
# forms, C and Python formats), into bin/locale/<lang>/LC_MESSAGES/tails-backup.mo. The Go
# verbs are checked by internal/pot's test. msgfmt comes from Debian's gettext. The catalogs go
# next to the binary (BIN), so that a build elsewhere (the install test's) writes only there.
LINGUAS := $(sort $(basename $(notdir $(wildcard po/*.po))))
LOCALEDIR = $(dir $(BIN))locale
MOS := $(foreach l,$(LINGUAS),$(LOCALEDIR)/$(l)/LC_MESSAGES/tails-backup.mo)
mo: $(MOS)
$(LOCALEDIR)/%/LC_MESSAGES/tails-backup.mo: po/%.po
	@mkdir -p $(dir $@)
	msgfmt -c --check-format -o $@ $<

# The template po/tails-backup.pot, from the texts of the Go code (internal/pot: the literal
# arguments of l10n's Tr, TrN and Mark) and of the app (xgettext on its Python and .ui files).
# Then bring each catalog up to date: msgmerge --update po/<lang>.po po/tails-backup.pot.
pot:
	$(GO) run ./internal/pot/potgen -o po/tails-backup.pot

# gofmt reads the project's own files only: .cache holds guest file systems and package builds.
lint:
	@out=$$(git ls-files -z --cached --others --exclude-standard '*.go' | xargs -0 gofmt -l); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test:
	./.ci/deps test
	$(MAKE) lint
	$(GO) test -race -count=1 -timeout 40m ./...

# The pictures of docs/user-guide.md, into SCREENSHOTS (relative to this directory): the
# notifications and the passphrase prompt from the real GNOME Shell 48 (Tails 7's) through the
# agent's journeys (agent/realshell_test.go), the Backup app's pages through its journey
# (app/journey_test.go); and the same in Arabic, laid out right to left, into SCREENSHOTS/ar
# (TestRealShellArabic, TestJourney's GNOME48-Arabic). Look at each one before you commit it.
SCREENSHOTS ?= docs/screenshots
screenshots:
	./.ci/deps test
	TAILS_BACKUP_SCREENSHOTS=$(SCREENSHOTS) $(GO) test -p 1 -count=1 -timeout 20m -run 'TestRealShell' ./agent/
	TAILS_BACKUP_SCREENSHOTS=$(SCREENSHOTS) $(GO) test -p 1 -count=1 -timeout 20m -run 'TestJourney$$' ./app/

# Short fuzzing of every parser of outside input; FUZZTIME per target.
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	./.ci/deps bench
	$(GO) run ./sync/internal/mirrorbench $(BENCHFLAGS)

# The demo: the product in a QEMU virtual machine playing a Tails computer, narrated (e2e/demo).
demo:
	./.ci/deps e2e
	$(GO) run ./e2e/demo

# The mirror engine alone, on two ext4 file systems on this machine (the former demo).
demo-sync:
	./.ci/deps demo
	$(GO) build -o $(BIN) ./cmd/tails-backup
	$(GO) run ./sync/internal/demo -bin $(BIN)

# The whole product end to end in a QEMU guest (e2e/): real systemd, udev, udisks2, polkit,
# dm-crypt, vfat and USB sticks hot-plugged over QMP. The guest image is built once per Debian
# suite (debootstrap from this machine's Debian mirror) and cached in .cache/e2e; each run
# installs the current build's Debian package in it. E2E_DEBIAN=trixie (Tails 7, the default)
# or bookworm (Tails 6). TCG unless a probe boot shows that KVM works (E2E_ACCEL=tcg|kvm).
e2e:
	./.ci/deps e2e
	$(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestE2E$$' ./e2e/

# A stick's speed (issue 16; not in CI, nor in .ci/run): in the guest of make e2e, after create,
# a week of changes copied onto a backup stick that QEMU throttles like a common flash stick
# (20 MB/s, 150 write requests/s), by the agent and by Tails' rsync -PaSHAXv --del from the same
# state of the stick, then the engine alone by number of workers, then a 200 MiB video with the
# stick pulled once E2E_RESUME_PULL_PERCENT (a whole number from 5 to 95, 40 when unset) of it
# is written and plugged again; prints the tables (docs/benchmark.md). E2E_DEBIAN and E2E_ACCEL
# as for make e2e.
e2e-bench:
	./.ci/deps e2e
	$(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestE2EBench$$' ./e2e/

# Only the guest image of the leg E2E_DEBIAN names (built once, then cached).
e2e-image:
	./.ci/deps e2e
	$(GO) test -tags e2e -count=1 -timeout 45m -v -run 'TestE2EImage$$' ./e2e/

clean:
	rm -rf bin dist

# The Debian packages, built by debhelper (debian/, .ci/deb) into DISTDIR: tails-backup (what a
# Tails needs) and tails-backup-debian-extras (the polkit and udev rules, for a Debian that is not
# Tails), checked by lintian. Installs its build dependencies (debhelper, dpkg-dev, lintian, sudo
# for visudo); the Go is the one on PATH and the modules are vendored before the build.
DISTDIR ?= dist
deb:
	./.ci/deps deb
	./.ci/deb $(DISTDIR)

# make install [DESTDIR=DIR] [PREFIX=/usr]: builds the program and installs it with its packaging
# (cmd/tails-backup/install/README.md): the binary, the root helper's symlink, the sudoers rule,
# the systemd user unit of the session agent, the polkit and udev rules for a Debian that is not
# Tails, the documentation, and the translations (/usr/share/locale/<lang>/LC_MESSAGES/tails-backup.mo). It can be run again. It starts, enables and reloads nothing, and
# with DESTDIR it writes only under DESTDIR. Only PREFIX=/usr works: the session agent runs
# /usr/lib/tails-backup/helper, the path that the sudoers rule allows.
PREFIX ?= /usr
PKGDIR := cmd/tails-backup/install
DOCS := README.md $(wildcard docs/*.md)
# The Backup app (app/): its Python package and its pages.
APPPY := $(wildcard app/tailsbackup/*.py)
APPUI := $(wildcard app/ui/*.ui)

.PHONY: install
install: build
	$(if $(filter-out /usr,$(PREFIX)),$(error make install: PREFIX must be /usr: the session agent runs /usr/lib/tails-backup/helper, the path the sudoers rule allows))
	@if command -v visudo >/dev/null 2>&1; then visudo -cq -f $(PKGDIR)/sudoers; fi
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/user \
	  $(DESTDIR)$(PREFIX)/share/polkit-1/rules.d $(DESTDIR)$(PREFIX)/lib/udev/rules.d
	[ -d $(DESTDIR)/etc/sudoers.d ] || install -d -m 0750 $(DESTDIR)/etc/sudoers.d
	install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/tails-backup $(DESTDIR)$(PREFIX)/share/doc/tails-backup
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/tails-backup
	ln -sfn ../../bin/tails-backup $(DESTDIR)$(PREFIX)/lib/tails-backup/helper
	install -m 0440 $(PKGDIR)/sudoers $(DESTDIR)/etc/sudoers.d/.tails-backup.new
	mv -f $(DESTDIR)/etc/sudoers.d/.tails-backup.new $(DESTDIR)/etc/sudoers.d/tails-backup
	install -m 0644 $(PKGDIR)/tails-backup-agent.service $(DESTDIR)$(PREFIX)/lib/systemd/user/tails-backup-agent.service
	install -m 0644 $(PKGDIR)/50-tails-backup.rules $(DESTDIR)$(PREFIX)/share/polkit-1/rules.d/50-tails-backup.rules
	install -m 0644 $(PKGDIR)/99-tails-backup.rules $(DESTDIR)$(PREFIX)/lib/udev/rules.d/99-tails-backup.rules
	install -m 0644 $(DOCS) $(DESTDIR)$(PREFIX)/share/doc/tails-backup/
	install -m 0644 $(PKGDIR)/README.md $(DESTDIR)$(PREFIX)/share/doc/tails-backup/INSTALL.md
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/tails-backup/app/tailsbackup $(DESTDIR)$(PREFIX)/share/tails-backup/app/ui \
	  $(DESTDIR)$(PREFIX)/share/applications
	install -m 0755 app/tails-backup-app $(DESTDIR)$(PREFIX)/bin/tails-backup-app
	install -m 0644 $(APPPY) $(DESTDIR)$(PREFIX)/share/tails-backup/app/tailsbackup/
	install -m 0644 $(APPUI) $(DESTDIR)$(PREFIX)/share/tails-backup/app/ui/
	install -m 0644 app/org.boum.tails.Backup.desktop $(DESTDIR)$(PREFIX)/share/applications/org.boum.tails.Backup.desktop
	for l in $(LINGUAS); do \
	  install -d -m 0755 $(DESTDIR)$(PREFIX)/share/locale/$$l/LC_MESSAGES && \
	  install -m 0644 $(LOCALEDIR)/$$l/LC_MESSAGES/tails-backup.mo $(DESTDIR)$(PREFIX)/share/locale/$$l/LC_MESSAGES/tails-backup.mo || exit 1; \
	done

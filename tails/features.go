package tails

import (
	"slices"
	"strings"
)

// Feature is a Persistent Storage feature of Tails 6 and the applications that hold its files
// open, which must be closed for a consistent copy.
type Feature struct {
	// Name is how the user knows it.
	Name string
	// Source is the folder of the Persistent Storage (the source= of persistence.conf).
	Source string
	// Apps are the applications to close before copying; empty when nothing needs closing.
	Apps []App
	// Bindings are the lines the Persistent Storage settings of Tails (tps) write into
	// persistence.conf for it, the same in Tails 6 and 7: each its destination, its source and
	// the options "source=" and, for dotfiles, "link" (tps's Mount.to_persistenceconf_line).
	Bindings []Binding
}

// App is an application, recognised by the names of its processes (/proc/PID/comm, which the
// kernel truncates to 15 bytes).
type App struct {
	Name      string
	Processes []string
	// System apps run as root: the session cannot close them, only wait until they are done.
	System bool
}

// Features returns the features whose applications matter, with the process names to look for.
// NetworkManager and the other system services are deliberately absent: they are never stopped.
func Features() []Feature {
	apt := App{Name: "The package manager", Processes: []string{"apt", "apt-get", "dpkg", "synaptic"}, System: true}
	return []Feature{
		{Name: "Persistent Folder", Source: "Persistent",
			Bindings: []Binding{bind("/home/amnesia/Persistent", "Persistent")}},
		{Name: "Tor Browser Bookmarks", Source: "bookmarks", Apps: []App{{Name: "Tor Browser", Processes: []string{"firefox.real"}}},
			Bindings: []Binding{bind("/home/amnesia/.mozilla/firefox/bookmarks", "bookmarks")}},
		{Name: "Welcome Screen", Source: "greeter-settings",
			Bindings: []Binding{bind("/var/lib/gdm3/settings/persistent", "greeter-settings")}},
		{Name: "Network Connections", Source: "nm-system-connections",
			Bindings: []Binding{bind("/etc/NetworkManager/system-connections", "nm-system-connections")}},
		{Name: "Tor Bridge", Source: "tca",
			Bindings: []Binding{bind("/var/lib/tca", "tca")}},
		{Name: "Additional Software", Source: "apt", Apps: []App{apt},
			Bindings: []Binding{bind("/var/cache/apt/archives", "apt/cache"), bind("/var/lib/apt/lists", "apt/lists")}},
		{Name: "Printers", Source: "cups-configuration",
			Bindings: []Binding{bind("/etc/cups", "cups-configuration")}},
		{Name: "Thunderbird Email Client", Source: "thunderbird", Apps: []App{{Name: "Thunderbird", Processes: []string{"thunderbird", "thunderbird-bin"}}},
			Bindings: []Binding{bind("/home/amnesia/.thunderbird", "thunderbird")}},
		{Name: "GnuPG", Source: "gnupg", Apps: []App{{Name: "GnuPG", Processes: []string{"gpg"}}},
			Bindings: []Binding{bind("/home/amnesia/.gnupg", "gnupg")}},
		{Name: "Electrum Bitcoin Wallet", Source: "electrum", Apps: []App{{Name: "Electrum", Processes: []string{"electrum"}}},
			Bindings: []Binding{bind("/home/amnesia/.electrum", "electrum")}},
		{Name: "Pidgin Internet Messenger", Source: "pidgin", Apps: []App{{Name: "Pidgin", Processes: []string{"pidgin"}}},
			Bindings: []Binding{bind("/home/amnesia/.purple", "pidgin")}},
		{Name: "SSH Client", Source: "openssh-client", Apps: []App{{Name: "SSH", Processes: []string{"ssh"}}},
			Bindings: []Binding{bind("/home/amnesia/.ssh", "openssh-client")}},
		{Name: "Dotfiles", Source: "dotfiles",
			Bindings: []Binding{{Destination: "/home/amnesia", Source: "dotfiles", Link: true, Options: []string{"source=dotfiles", "link"}}}},
	}
}

// bind is the persistence.conf line of a feature whose folder is bind-mounted.
func bind(destination, source string) Binding {
	return Binding{Destination: destination, Source: source, Options: []string{"source=" + source}}
}

// FeatureOfBinding returns the feature of which b is one of Tails' own persistence.conf lines:
// the same destination, source and "link", and no other option. The order of the options does
// not matter: tps compares them as a set.
func FeatureOfBinding(b Binding) (Feature, bool) {
	got := slices.Sorted(slices.Values(b.Options))
	for _, f := range Features() {
		for _, fb := range f.Bindings {
			if b.Destination == fb.Destination && b.Source == fb.Source && b.Link == fb.Link && !b.File &&
				slices.Equal(got, slices.Sorted(slices.Values(fb.Options))) {
				return f, true
			}
		}
	}
	return Feature{}, false
}

// ActiveFeatures returns the features that the bindings of persistence.conf turn on.
func ActiveFeatures(bs []Binding) []Feature {
	src := Sources(bs)
	var out []Feature
	for _, f := range Features() {
		top, _, _ := strings.Cut(f.Source, "/")
		if src[top] {
			out = append(out, f)
		}
	}
	return out
}

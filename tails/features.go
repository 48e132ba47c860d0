package tails

import "strings"

// Feature is a Persistent Storage feature of Tails 6 and the applications that hold its files
// open, which must be closed for a consistent copy.
type Feature struct {
	// Name is how the user knows it.
	Name string
	// Source is the folder of the Persistent Storage (the source= of persistence.conf).
	Source string
	// Apps are the applications to close before copying; empty when nothing needs closing.
	Apps []App
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
		{Name: "Persistent Folder", Source: "Persistent"},
		{Name: "Tor Browser Bookmarks", Source: "bookmarks", Apps: []App{{Name: "Tor Browser", Processes: []string{"firefox.real"}}}},
		{Name: "Welcome Screen", Source: "greeter-settings"},
		{Name: "Network Connections", Source: "nm-system-connections"},
		{Name: "Tor Bridge", Source: "tca"},
		{Name: "Additional Software", Source: "apt", Apps: []App{apt}},
		{Name: "Printers", Source: "cups-configuration"},
		{Name: "Thunderbird Email Client", Source: "thunderbird", Apps: []App{{Name: "Thunderbird", Processes: []string{"thunderbird", "thunderbird-bin"}}}},
		{Name: "GnuPG", Source: "gnupg", Apps: []App{{Name: "GnuPG", Processes: []string{"gpg"}}}},
		{Name: "Electrum Bitcoin Wallet", Source: "electrum", Apps: []App{{Name: "Electrum", Processes: []string{"electrum"}}}},
		{Name: "Pidgin Internet Messenger", Source: "pidgin", Apps: []App{{Name: "Pidgin", Processes: []string{"pidgin"}}}},
		{Name: "SSH Client", Source: "openssh-client", Apps: []App{{Name: "SSH", Processes: []string{"ssh"}}}},
		{Name: "Dotfiles", Source: "dotfiles"},
	}
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

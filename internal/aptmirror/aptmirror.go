// Package aptmirror reads the Debian mirror of this machine's apt configuration, from which the
// tests build Debian root file systems (the e2e guest's image, GNOME Shell 48's Debian 13 root).
package aptmirror

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Debian returns the main Debian archive's mirror of this machine's apt sources, without a
// trailing slash ("http://deb.debian.org/debian"). apt itself reads its sources (one-line
// .list and deb822 .sources files alike) through `apt-get indextargets`; the mirror is the
// first http(s) source of a suite without a dash (not -updates, -security or -backports)
// whose address is not the security archive's. The same mirror serves Debian 12 and 13.
func Debian(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE)", "Created-By: Packages").Output()
	if err != nil {
		return "", fmt.Errorf("read the apt sources (apt-get indextargets): %w", err)
	}
	if uri := pick(string(out)); uri != "" {
		return uri, nil
	}
	return "", errors.New("no Debian mirror of the main archive in the apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/): add one")
}

// pick returns the mirror of Debian's lines of "URI RELEASE", "" if none is the main archive.
func pick(indextargets string) string {
	for _, line := range strings.Split(indextargets, "\n") {
		uri, release, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || !strings.HasPrefix(uri, "http") || !strings.Contains(uri, "debian") ||
			strings.Contains(uri, "security") || release == "" || strings.Contains(release, "-") {
			continue
		}
		return strings.TrimRight(uri, "/")
	}
	return ""
}

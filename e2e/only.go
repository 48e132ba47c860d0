package e2e

import (
	"context"
	"fmt"
	"strings"
)

// scenario is a step of TestE2E after the setup: its name (a number and a word), what it
// does, and the scenarios it needs to have run before it.
type scenario struct {
	name  string
	fn    func(context.Context) error
	needs []string
	// tails, if not 0, is the one leg (Tails major version) that runs this scenario when all
	// run: a scenario that tests only the engine and ext4, not the leg's udisks2, cryptsetup,
	// polkit or boot (see TestE2E). E2E_ONLY runs it on any leg.
	tails int
}

// selectScenarios returns the names of the scenarios to run on the leg of Tails version
// tails, in order: if only is "", all of them but those that belong to another leg; else
// those that E2E_ONLY names (comma-separated; a number names the scenario it starts with,
// "10" is "10-pulls"; a name may be given whole, "pair"), the ones they need, and always (the
// steps of the setup that every scenario needs), on any leg.
func selectScenarios(all []scenario, tails int, only string, always ...string) ([]string, error) {
	if strings.TrimSpace(only) == "" {
		var names []string
		for _, sc := range all {
			if sc.tails == 0 || sc.tails == tails {
				names = append(names, sc.name)
			}
		}
		return names, nil
	}
	want := map[string]bool{}
	var add func(name string)
	byName := map[string]scenario{}
	for _, sc := range all {
		byName[sc.name] = sc
	}
	add = func(name string) {
		if want[name] {
			return
		}
		want[name] = true
		for _, n := range byName[name].needs {
			add(n)
		}
	}
	for _, name := range always {
		add(name)
	}
	for _, item := range strings.Split(only, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		found := false
		for _, sc := range all {
			num, _, _ := strings.Cut(sc.name, "-")
			if item == sc.name || item == num {
				add(sc.name)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("E2E_ONLY names %q, which is no scenario", item)
		}
	}
	var names []string
	for _, sc := range all {
		if want[sc.name] {
			names = append(names, sc.name)
		}
	}
	return names, nil
}

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"tails-backup/l10n"
)

// Scenario 16: the session speaks French, as Tails' Welcome Screen sets it, and the product
// speaks French with it: the agent's notifications and passphrase dialog, and the command line.
// The expected texts are never written here: they come from po/fr.po on the host, compiled
// with msgfmt and read by the product's own l10n package, so the scenario follows the catalog.

// The session's language as Tails' Welcome Screen sets it for French (l10n.Languages): the
// catalog folder fr_FR does not exist, so this also exercises the fall back from fr_FR to fr.
var frenchSession = []string{"LANG=fr_FR.UTF-8", "LANGUAGE=fr_FR"}

// The catalog as the Debian package installs it (debian/tails-backup.install: usr/share/locale).
var guestFrenchMo = filepath.Join(l10n.Dir, "fr", "LC_MESSAGES", l10n.Domain+".mo")

// The agent's texts (agent/texts.go, session/update.go) that the scenario expects, as msgids.
const (
	msgUpdating     = "Updating your backup Tails"
	msgUpdatingBody = "Enter the passphrase of your backup Tails to start."
	msgDone         = "Backup updated: you can unplug it"
	msgDoneOne      = "%[1]d file changed, %[2]s copied."
	msgDoneOther    = "%[1]d files changed, %[2]s copied."
	msgPinDesc      = "Enter the passphrase of your backup Tails (%s) to update it."
	msgPinPrompt    = "Passphrase of your backup Tails"
	msgPinOK        = "Update"
	msgMainTails    = "This is your main Tails."
	msgPaired       = "Backup Tails paired with this Tails: %d"
	msgStatusArgs   = "status takes no arguments"
)

// compileCatalog compiles the catalog po (po/LANG.po) with msgfmt, checked as `make mo` does,
// into dir laid out as /usr/share/locale, and loads it with the product's l10n package.
func compileCatalog(ctx context.Context, po, dir, lang string) (*l10n.Locale, error) {
	mo := filepath.Join(dir, lang, "LC_MESSAGES", l10n.Domain+".mo")
	if err := os.MkdirAll(filepath.Dir(mo), 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "msgfmt", "-c", "--check-format", "-o", mo, po).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("msgfmt %s: %w\n%s", po, err, out)
	}
	loc := l10n.Load([]string{lang}, dir)
	if loc.Lang() != lang {
		return nil, fmt.Errorf("the catalog compiled from %s cannot be read by the l10n package", po)
	}
	return loc, nil
}

// hole stands for argument i of a sentence: formatted (whatever its verb) as a marker that
// catalogArgs finds again, with the verb, so that it knows a number from a text.
type hole int

func (h hole) Format(f fmt.State, verb rune) { fmt.Fprintf(f, "\x00%d%c\x00", int(h), verb) }

// catalogArgs reads back the arguments of a sentence whose arguments the test cannot know in
// advance (a number of files, a size, a stick's name). sentence formats the catalog's
// translation with the args it is given (loc.Tr, or loc.TrN with a fixed count); it is called
// once with placeholders to learn the translation's shape, in the catalog's order of the
// arguments. It returns the text of each of the nargs arguments ("" for one the translation
// does not use), or false when text does not have that shape. The caller makes the sentence
// again from them: the shape alone does not prove that it is the catalog's sentence.
func catalogArgs(text string, nargs int, sentence func(args ...any) string) ([]string, bool) {
	holes := make([]any, nargs)
	for i := range holes {
		holes[i] = hole(i)
	}
	parts := strings.Split(sentence(holes...), "\x00")
	var re strings.Builder
	re.WriteString("^")
	var order []int
	for i, p := range parts {
		if i%2 == 0 {
			re.WriteString(regexp.QuoteMeta(p))
			continue
		}
		// p is "<index><verb>".
		n, err := strconv.Atoi(p[:len(p)-1])
		if err != nil || n < 0 || n >= nargs {
			return nil, false
		}
		order = append(order, n)
		if p[len(p)-1] == 'd' {
			re.WriteString(`(-?[0-9]+)`)
		} else {
			re.WriteString(`(.+?)`)
		}
	}
	re.WriteString("$")
	m := regexp.MustCompile(re.String()).FindStringSubmatch(text)
	if m == nil {
		return nil, false
	}
	args := make([]string, nargs)
	for i, n := range order {
		v := m[i+1]
		// In a language written right to left, l10n isolates a text argument (FSI…PDI): the
		// value is what is inside, which formatting the sentence again isolates again.
		if strings.HasPrefix(v, l10n.FSI) && strings.HasSuffix(v, l10n.PDI) {
			v = strings.TrimSuffix(strings.TrimPrefix(v, l10n.FSI), l10n.PDI)
		}
		if args[n] != "" && args[n] != v {
			return nil, false // one argument written twice, with two values
		}
		args[n] = v
	}
	return args, true
}

// pluralSamples are counts of each plural form of the languages Tails speaks (Arabic has six:
// 0, 1, 2, 3–10, 11–99, 100–102...), to learn the shape of each form of a sentence.
var pluralSamples = []int{0, 1, 2, 3, 11, 100}

// matchCount tells whether text is loc.TrN(one, other, n, n, s) for a count n and a text s
// (a size): the catalog's sentence, in the catalog's plural form for n. It returns n and s.
func matchCount(loc *l10n.Locale, one, other, text string) (int, string, bool) {
	for _, sample := range pluralSamples {
		args, ok := catalogArgs(text, 2, func(a ...any) string { return loc.TrN(one, other, sample, a...) })
		if !ok {
			continue
		}
		n := sample // a form that does not write its count (Arabic's "one file")
		if args[0] != "" {
			var err error
			if n, err = strconv.Atoi(args[0]); err != nil {
				continue
			}
		}
		if loc.TrN(one, other, n, n, args[1]) == text {
			return n, args[1], true
		}
	}
	return 0, "", false
}

// matchText tells whether text is loc.Tr(msgid, args...) for some texts args (msgid has
// nargs %s verbs), and returns them.
func matchText(loc *l10n.Locale, msgid string, nargs int, text string) ([]string, bool) {
	args, ok := catalogArgs(text, nargs, func(a ...any) string { return loc.Tr(msgid, a...) })
	if !ok {
		return nil, false
	}
	as := make([]any, len(args))
	for i, a := range args {
		as[i] = a
	}
	return args, loc.Tr(msgid, as...) == text
}

// translated fails unless loc translates each msgid: a text the catalog leaves in English
// would make a check in French pass in English.
func translated(loc *l10n.Locale, msgids ...string) error {
	for _, id := range msgids {
		if loc.Tr(id) == id {
			return fmt.Errorf("the %s catalog does not translate %q", loc.Lang(), id)
		}
	}
	return nil
}

// ScenarioFrench (16): the session speaks French as Tails sets it; plugging the backup shows
// the update's notifications and passphrase dialog in French, and `tails-backup status` speaks
// French with the catalog installed and English without it. The guest ends as it was: the
// session's environment, the agent in it, and the catalog.
func (w *World) ScenarioFrench(ctx context.Context) (err error) {
	fr, err := compileCatalog(ctx, filepath.Join(w.Repo, "po", "fr.po"), filepath.Join(w.Dir, "locale"), "fr")
	if err != nil {
		return err
	}
	en := l10n.English()
	if err := translated(fr, msgUpdating, msgUpdatingBody, msgDone, msgDoneOne, msgPinDesc, msgPinPrompt, msgMainTails, msgPaired, msgStatusArgs); err != nil {
		return err
	}
	// The catalog is the package's, where gettext looks for it.
	owner, err := w.G.Root(ctx, "dpkg-query", "-S", guestFrenchMo)
	if err != nil {
		return fmt.Errorf("the French catalog is not installed by a package: %w", err)
	}
	if !strings.HasPrefix(owner, "tails-backup: ") {
		return fmt.Errorf("%s belongs to %q, not to tails-backup", guestFrenchMo, strings.TrimSpace(owner))
	}
	// The same catalog as the host's, when the package was built with the same msgfmt.
	if sum, err := w.G.Root(ctx, "sha256sum", guestFrenchMo); err == nil {
		host, _ := Sha256(filepath.Join(w.Dir, "locale", "fr", "LC_MESSAGES", l10n.Domain+".mo"))
		w.Log.Logf("sha256 of the French catalog: %s in the guest, %s compiled on the host", strings.Fields(sum)[0], host)
	}
	// The guest has no locales package: the C library has no fr_FR.UTF-8, which the Go side
	// does not need (l10n reads LANG and LANGUAGE itself), so the French below owes nothing to it.
	locales, _ := w.G.Root(ctx, "sh", "-c", "locale -a 2>/dev/null | tr '\\n' ' '")
	w.Log.Logf("the guest's C library locales: %s; %s is the package's", locales, guestFrenchMo)

	before, err := w.G.User(ctx, "systemctl", "--user", "show-environment")
	if err != nil {
		return err
	}
	w.Say.Logf("You chose French in the Welcome Screen: the session has %s.", strings.Join(frenchSession, " "))
	if _, err := w.G.User(ctx, append([]string{"systemctl", "--user", "set-environment"}, frenchSession...)...); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// The backup may still be plugged in: the agent restarted in English would update it.
			w.UnplugAll(ctx)
		}
		if rerr := w.restoreSessionLanguage(ctx, before); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	// The agent reads the language when it starts, as it does in a session that starts in French.
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	if err := w.StartAgent(ctx); err != nil {
		return err
	}
	if line, err := w.agentStarted(ctx); err != nil || !slices.Contains(strings.Fields(line), "lang="+fr.Lang()) {
		return fmt.Errorf("the agent did not start in French: %q %v", line, err)
	}

	if err := w.frenchUpdate(ctx, fr); err != nil {
		return err
	}
	return w.statusInFrench(ctx, fr, en)
}

// frenchUpdate plugs the backup and checks the update's notifications and passphrase dialog
// against the French catalog.
func (w *World) frenchUpdate(ctx context.Context, fr *l10n.Locale) error {
	st := w.Sticks[StickBackup]
	// The person writes two letters (the weeks of changes of ChangeData, seeds 0 to 9, are the
	// other scenarios'): the update has files to copy.
	if _, err := w.G.User(ctx, "sh", "-c", `cd `+persistenceMount+`/Persistent/Documents && `+
		`printf 'Dear Camille,\n' >letter-16a.txt && printf 'Dear Karim,\n' >letter-16b.txt`); err != nil {
		return err
	}
	w.Say.Logf("You plug in your backup Tails.")
	res, err := w.plugAndUpdateSaying(ctx, updateTexts{fr.Tr(msgUpdating), fr.Tr(msgUpdatingBody), fr.Tr(msgDone)}, nil, st.Passphrase)
	if err != nil {
		return err
	}
	// The notifications' texts are the catalog's whole sentences, not just containing them.
	if found := res.First; found.Summary != fr.Tr(msgUpdating) || found.Body != fr.Tr(msgUpdatingBody) {
		return fmt.Errorf("the first notification is %q, %q; the catalog says %q, %q", found.Summary, found.Body, fr.Tr(msgUpdating), fr.Tr(msgUpdatingBody))
	}
	done := res.Done
	if done.Summary != fr.Tr(msgDone) {
		return fmt.Errorf("the done notification's title is %q; the catalog says %q", done.Summary, fr.Tr(msgDone))
	}
	n, size, ok := matchCount(fr, msgDoneOne, msgDoneOther, done.Body)
	if !ok {
		return fmt.Errorf("the done notification's text %q is not the catalog's sentence (%q for 2 files)", done.Body, fr.TrN(msgDoneOne, msgDoneOther, 2, 2, "…"))
	}
	w.Say.Logf("In French: %q, %q (%d files, %s: the catalog's plural form for %d).", done.Summary, done.Body, n, size, n)
	// The passphrase dialog (the fake pinentry logs the Assuan lines it was sent).
	log, shown, err := w.PinentryLog(ctx)
	if err != nil {
		return err
	}
	if shown != 1 {
		return fmt.Errorf("%d passphrase dialogs were shown, want 1:\n%s", shown, log)
	}
	dialog := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		_, cmd, _ := strings.Cut(line, ": ")
		verb, arg, _ := strings.Cut(cmd, " ")
		if a, err := url.PathUnescape(arg); err == nil { // Assuan escapes '%' and control characters as %XX
			dialog[verb] = a
		}
	}
	if dialog["SETPROMPT"] != fr.Tr(msgPinPrompt) || dialog["SETOK"] != fr.Tr(msgPinOK) {
		return fmt.Errorf("the passphrase dialog has the prompt %q and the button %q; the catalog says %q, %q", dialog["SETPROMPT"], dialog["SETOK"], fr.Tr(msgPinPrompt), fr.Tr(msgPinOK))
	}
	if args, ok := matchText(fr, msgPinDesc, 1, dialog["SETDESC"]); !ok || args[0] == "" {
		return fmt.Errorf("the passphrase dialog says %q, not the catalog's %q", dialog["SETDESC"], fr.Tr(msgPinDesc, "…"))
	}
	w.Say.Logf("The passphrase dialog said: %q, %q.", dialog["SETPROMPT"], dialog["SETDESC"])
	return nil
}

// statusInFrench runs `tails-backup status` in the session's terminal: French with the
// catalog installed, English with it moved aside (then put back), in the same session.
func (w *World) statusInFrench(ctx context.Context, fr, en *l10n.Locale) (err error) {
	js, err := w.Terminal(ctx, "tails-backup", "status", "--json")
	if err != nil {
		return err
	}
	var doc struct {
		Backups []json.RawMessage `json:"backups"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		return fmt.Errorf("tails-backup status --json: %w: %q", err, js)
	}
	check := func(loc *l10n.Locale, other *l10n.Locale) error {
		out, err := w.Terminal(ctx, "tails-backup", "status")
		if err != nil {
			return err
		}
		w.Log.Logf("tails-backup status (catalog: %q):\n%s", loc.Lang(), out)
		for _, line := range []string{loc.Tr(msgMainTails), loc.Tr(msgPaired, len(doc.Backups))} {
			if !strings.Contains(out, line+"\n") {
				return fmt.Errorf("tails-backup status does not say %q:\n%s", line, out)
			}
		}
		if strings.Contains(out, other.Tr(msgMainTails)) {
			return fmt.Errorf("tails-backup status says %q:\n%s", other.Tr(msgMainTails), out)
		}
		// An error of the command line, on its standard error.
		_, err = w.Terminal(ctx, "tails-backup", "status", "extra")
		var ce *CommandError
		if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, loc.Tr(msgStatusArgs)) {
			return fmt.Errorf("tails-backup status extra did not fail saying %q: %v", loc.Tr(msgStatusArgs), err)
		}
		return nil
	}
	if err := check(fr, en); err != nil {
		return err
	}
	w.Say.Logf("'tails-backup status' in the terminal says %q and %q.", fr.Tr(msgMainTails), fr.Tr(msgPaired, len(doc.Backups)))

	aside := guestFrenchMo + ".aside"
	if _, err := w.G.Root(ctx, "mv", guestFrenchMo, aside); err != nil {
		return err
	}
	defer func() {
		if _, perr := w.G.Root(ctx, "mv", aside, guestFrenchMo); perr != nil {
			err = errors.Join(err, fmt.Errorf("cannot put the French catalog back: %w", perr))
		}
	}()
	if err := check(en, fr); err != nil {
		return fmt.Errorf("without the French catalog: %w", err)
	}
	w.Say.Logf("Without the French catalog, in the same session: %q.", en.Tr(msgMainTails))
	return nil
}

// restoreSessionLanguage gives the session the LANG and LANGUAGE it had before (as
// `systemctl --user show-environment` listed them) and restarts the agent in it.
func (w *World) restoreSessionLanguage(ctx context.Context, before string) error {
	var set, unset []string
	for _, v := range frenchSession {
		name, _, _ := strings.Cut(v, "=")
		old := ""
		for _, line := range strings.Split(before, "\n") {
			if strings.HasPrefix(line, name+"=") {
				old = line
			}
		}
		if old != "" {
			set = append(set, old)
		} else {
			unset = append(unset, name)
		}
	}
	if len(unset) > 0 {
		if _, err := w.G.User(ctx, append([]string{"systemctl", "--user", "unset-environment"}, unset...)...); err != nil {
			return err
		}
	}
	if len(set) > 0 {
		if _, err := w.G.User(ctx, append([]string{"systemctl", "--user", "set-environment"}, set...)...); err != nil {
			return err
		}
	}
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	if err := w.StartAgent(ctx); err != nil {
		return err
	}
	if line, err := w.agentStarted(ctx); err != nil || slices.Contains(strings.Fields(line), "lang=fr") {
		return fmt.Errorf("the agent did not start again in the session's language: %q %v", line, err)
	}
	w.Log.Logf("the session's language is back as it was (set %q, unset %q), the agent restarted in it", set, unset)
	return nil
}

// agentStarted is the running agent's "agent started" line in its journal, which names the
// language it speaks (lang=fr; empty for English).
func (w *World) agentStarted(ctx context.Context) (string, error) {
	out, err := w.G.Root(ctx, "sh", "-c", "journalctl -q -o cat _SYSTEMD_USER_UNIT=tails-backup-agent.service "+
		"_PID=$(systemctl --user -M amnesia@ show -p MainPID --value tails-backup-agent.service) | grep 'agent started'")
	return strings.TrimSpace(out), err
}

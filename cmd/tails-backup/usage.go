package main

// How every command reads its options and explains itself: `tails-backup CMD --help` (and
// `tails-backup help CMD`) prints what the command does and its options on standard output; a
// bad command line is one error line and a hint, with exit status 2.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"tails-backup/l10n"
)

// helperHelp is `tails-backup help helper`: the helper itself takes no argument, --help included.
const helperHelp = `usage: tails-backup helper (through sudo, with no arguments)

The root helper: the session agent and the commands create, pair, update, restore, verify
and promote run it through sudo (/usr/lib/tails-backup/helper) and send it one request on
standard input.
It is not meant to be run by hand.
`

// newFlagSet returns the flag set of the command name, whose --help prints the synopsis, the
// description and the options. The flag package itself prints nothing: parseFlags reports.
func newFlagSet(env *environment, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintln(env.stdout, env.loc.Tr("usage: tails-backup %[1]s %[2]s", name, synopsis))
		fmt.Fprintf(env.stdout, "\n%s\n", description)
		printOptions(env.loc, env.stdout, fs)
	}
	return fs
}

// parseFlags parses args; done is true after --help (the help was printed: exit 0).
func parseFlags(loc *l10n.Locale, fs *flag.FlagSet, args []string) (done bool, err error) {
	help := fs.Usage
	fs.Usage = func() {} // the flag package calls it on every error too
	err = fs.Parse(args)
	fs.Usage = help
	if errors.Is(err, flag.ErrHelp) {
		help()
		return true, nil
	}
	if err != nil {
		return true, fmt.Errorf("%w: %s", errUsage, flagErrorText(loc, err))
	}
	return false, nil
}

// flagErrorText words the flag package's errors for a person.
func flagErrorText(loc *l10n.Locale, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return loc.Tr("unknown option %s", dashes(name))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return loc.Tr("the option %s needs a value", dashes(name))
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "x" for flag -workers: parse error
		if v, f, ok := strings.Cut(rest, " for flag "); ok {
			f, _, _ = strings.Cut(f, ":")
			return loc.Tr("%[1]s is not a valid value for %[2]s", v, dashes(f))
		}
	}
	return msg
}

// dashes writes an option the way the help shows it: --name.
func dashes(name string) string { return "--" + strings.TrimLeft(name, "-") }

// optionArgs names the value of the options that take one, as the synopses do.
var optionArgs = map[string]string{"state": "FILE", "helper-command": "CMD", "exclude": "PATH",
	"skip": "FOLDER", "source": "DIR", "workers": "N", "xattr-cache": "DIR"}

// printOptions lists the options of fs, if any, one a line.
func printOptions(loc *l10n.Locale, w io.Writer, fs *flag.FlagSet) {
	type option struct{ name, usage string }
	var opts []option
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if arg != "" {
			if a, ok := optionArgs[f.Name]; ok {
				arg = a
			}
			name += " " + strings.ToUpper(arg)
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			// TRANSLATORS: %[1]s is what an option does, %[2]s its default value.
			usage = loc.Tr("%[1]s (default %[2]s)", usage, f.DefValue)
		}
		opts = append(opts, option{name, usage})
		width = max(width, utf8.RuneCountInString(name))
	})
	if len(opts) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, loc.Tr("options:"))
	for _, o := range opts {
		fmt.Fprintf(w, "  %-*s  %s\n", width, o.name, o.usage)
	}
}

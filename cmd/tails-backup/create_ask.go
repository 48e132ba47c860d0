package main

// What create asks on the terminal: the confirmation to erase (the new passphrase is asked
// through pinentry by session.AskNewPassphraseIn).

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// confirmErase asks to type yes: erasing a stick is not undone by a stray y.
func confirmErase(env *environment, name string) bool {
	fmt.Fprint(env.stdout, env.loc.Tr("Type yes to erase %s and make it your backup Tails: ", name))
	line, _ := bufio.NewReader(io.LimitReader(env.stdin, 1024)).ReadString('\n')
	if !strings.HasSuffix(line, "\n") {
		fmt.Fprintln(env.stdout) // no answer: end the question's line
	}
	return strings.EqualFold(strings.TrimSpace(line), "yes")
}

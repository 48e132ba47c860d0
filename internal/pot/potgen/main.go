// Command potgen writes the gettext template of tails-backup (`make pot`): potgen -o po/tails-backup.pot.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"tails-backup/internal/pot"
)

func main() {
	out := flag.String("o", "po/tails-backup.pot", "the template to write")
	root := flag.String("root", ".", "the project's folder")
	flag.Parse()
	if err := pot.Generate(context.Background(), *root, *out); err != nil {
		fmt.Fprintln(os.Stderr, "potgen:", err)
		os.Exit(1)
	}
}

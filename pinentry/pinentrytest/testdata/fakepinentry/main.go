// Command fakepinentry is a pinentry for the tests of package pinentry and of the commands. It
// speaks enough Assuan for them, scripted by environment variables (pinentrytest.Script sets
// them):
//
//	FAKEPIN_ANSWERS  a JSON array of answers; invocation N (counted in FAKEPIN_COUNTER) uses
//	                 answer N (the last one when fewer). An answer is a passphrase, or one of
//	                 "!cancel" (ERR 83886179), "!timeout" (ERR 83886142), "!hang" (never
//	                 answers GETPIN), "!crash" (exits 2 on GETPIN), "!garbage" (a bad escape),
//	                 "!unknown" (an unexpected response line).
//	FAKEPIN_COUNTER  a file that grows by one byte per invocation.
//	FAKEPIN_LOG      a file to which each received command is appended as "N: LINE".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	n := 0
	if c := os.Getenv("FAKEPIN_COUNTER"); c != "" {
		f, err := os.OpenFile(c, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			fail(err)
		}
		fi, _ := f.Stat()
		n = int(fi.Size())
		f.Write([]byte{'x'})
		f.Close()
	}
	var answers []string
	if err := json.Unmarshal([]byte(os.Getenv("FAKEPIN_ANSWERS")), &answers); err != nil || len(answers) == 0 {
		fail(fmt.Errorf("FAKEPIN_ANSWERS: %v", err))
	}
	answer := answers[min(n, len(answers)-1)]
	var logf *os.File
	if l := os.Getenv("FAKEPIN_LOG"); l != "" {
		var err error
		if logf, err = os.OpenFile(l, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			fail(err)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(lines ...string) {
		for _, l := range lines {
			out.WriteString(l + "\n")
		}
		out.Flush()
	}
	say("# fake pinentry", "OK Pleased to meet you")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := in.Text()
		if logf != nil {
			fmt.Fprintf(logf, "%d: %s\n", n, line)
		}
		verb, _, _ := strings.Cut(line, " ")
		switch verb {
		case "GETPIN":
			switch answer {
			case "!cancel":
				say("ERR 83886179 Operation cancelled <Pinentry>")
			case "!timeout":
				say("ERR 83886142 Timeout <Pinentry>")
			case "!hang":
				time.Sleep(time.Hour)
			case "!crash":
				os.Exit(2)
			case "!garbage":
				say("D abc%ZZ", "OK")
			case "!unknown":
				say("HELLO there")
			default:
				// Split the data over several D lines, with status and comment lines between.
				enc := escape(answer)
				say("S PASSWORD_QUALITY 0", "# a comment")
				for len(enc) > 0 {
					k := min(3, len(enc))
					for k < len(enc) && strings.LastIndexByte(enc[:k], '%') > k-3 {
						k++ // do not split an escape
					}
					say("D " + enc[:k])
					enc = enc[k:]
				}
				say("OK")
			}
		case "BYE":
			say("OK closing connection")
			return
		default:
			say("OK")
		}
	}
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == '\n' || c == '\r' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fakepinentry:", err)
	os.Exit(1)
}

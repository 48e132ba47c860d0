package tails

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadVersion returns the first line of the version file of the running Tails at path
// (VersionFile: "6.10 - 20241203"), trimmed; an empty first line is an error.
func ReadVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, 4096), 4096).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return line, nil
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"tails-backup/e2e/proto"
)

// serve answers the driver's requests on the virtio serial port, each in its own goroutine,
// so that a long wait does not hold up the others.
func serve(ctx context.Context, args []string) error {
	port := "/dev/virtio-ports/" + proto.PortName
	if len(args) > 0 {
		port = args[0]
	}
	f, err := os.OpenFile(port, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open the control port: %w", err)
	}
	defer f.Close()
	var mu sync.Mutex
	enc := json.NewEncoder(f)
	reply := func(r proto.Response) {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(r); err != nil {
			fmt.Fprintf(os.Stderr, "reply %d: %v\n", r.ID, err)
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var req proto.Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			// The host may have reconnected in the middle of a line: skip it.
			fmt.Fprintf(os.Stderr, "bad request line: %v\n", err)
			continue
		}
		go func() { reply(run(ctx, req)) }()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the control port: %w", err)
	}
	return errors.New("the control port was closed")
}

// run runs one request.
func run(ctx context.Context, req proto.Request) proto.Response {
	resp := proto.Response{ID: req.ID, Exit: -1}
	if len(req.Argv) == 0 {
		resp.Error = "empty command"
		return resp
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	if req.Background {
		cctx, cancel = context.WithCancel(ctx)
	}
	cmd := exec.CommandContext(cctx, req.Argv[0], req.Argv[1:]...)
	cmd.Dir = req.Dir
	env, cred, err := identity(req.User)
	if err != nil {
		cancel()
		resp.Error = err.Error()
		return resp
	}
	cmd.Env = append(env, req.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if req.Background {
		if err := cmd.Start(); err != nil {
			cancel()
			resp.Error = err.Error()
			return resp
		}
		go func() { cmd.Wait(); cancel() }()
		resp.Exit, resp.PID = 0, cmd.Process.Pid
		return resp
	}
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(req.Stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	resp.Stdout, resp.Stderr = stdout.Bytes(), stderr.Bytes()
	var exit *exec.ExitError
	switch {
	case err == nil:
		resp.Exit = 0
	case errors.As(err, &exit):
		resp.Exit = exit.ExitCode()
		if cctx.Err() != nil {
			resp.Error = fmt.Sprintf("killed after %v", timeout)
		}
	default:
		resp.Error = err.Error()
	}
	return resp
}

// identity returns the environment and credentials of name: root's, or a user's with the
// environment of its desktop session.
func identity(name string) ([]string, *syscall.Credential, error) {
	path := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if name == "" || name == "root" {
		return []string{path, "HOME=/root", "USER=root", "LOGNAME=root", "LANG=C.UTF-8"}, nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	gids, err := u.GroupIds()
	if err != nil {
		return nil, nil, err
	}
	var groups []uint32
	for _, g := range gids {
		n, _ := strconv.Atoi(g)
		groups = append(groups, uint32(n))
	}
	run := "/run/user/" + u.Uid
	env := []string{path, "HOME=" + u.HomeDir, "USER=" + name, "LOGNAME=" + name, "LANG=C.UTF-8",
		"XDG_RUNTIME_DIR=" + run, "DBUS_SESSION_BUS_ADDRESS=unix:path=" + run + "/bus",
		// As in the session's environment (environment.d, see install): the scripted pinentry.
		"PINENTRY_PROGRAM=" + libDir + "/pinentry"}
	return env, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}

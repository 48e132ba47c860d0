package clock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clockWatchAhead is how far ahead the watching timerfd is armed. Only its cancellation
// matters; when it expires instead (a year without a clock change), it is armed again.
const clockWatchAhead = 365 * 24 * time.Hour

// ClockChanges implements ClockChangeNotifier the way Linux offers: a timerfd on CLOCK_REALTIME
// armed with TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET, whose read fails with ECANCELED once the
// clock is set discontinuously (settimeofday, clock_settime, adjtimex ADJ_SETOFFSET) and after a
// resume from suspend. No polling: one goroutine waits in the runtime poller; it and the fd end
// with ctx (the fd is closed before the channel is).
func (RealClock) ClockChanges(ctx context.Context) (<-chan struct{}, error) {
	src, err := openTimerfdSource(clockWatchAhead)
	if err != nil {
		return nil, err
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		defer src.close()
		_ = watchClockSets(ctx, src, ch) // the closed channel says it ended
	}()
	return ch, nil
}

// clockSetSource is a one-shot timer that is cancelled when the wall clock is set: a timerfd,
// or a fake in tests (no test may set the clock of a shared machine).
type clockSetSource interface {
	// arm arms the timer again, which also forgets a cancellation already reported.
	arm() error
	// wait blocks until the timer expires (false) or is cancelled by a set of the clock (true).
	wait() (set bool, err error)
	// interrupt makes a blocked or later wait fail; safe from any goroutine.
	interrupt()
}

// watchClockSets sends on ch, without blocking (values coalesce), each time src reports that the
// clock was set, until ctx ends (returning ctx.Err()) or src fails (returning its error).
func watchClockSets(ctx context.Context, src clockSetSource, ch chan<- struct{}) error {
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		src.interrupt()
		close(woken)
	})
	defer func() {
		if !stop() {
			<-woken // src is not used after this returns
		}
	}()
	if err := src.arm(); err != nil {
		return err
	}
	for {
		set, err := src.wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return err
		}
		// Armed again before telling: a set in between is then seen by whoever reads the clock
		// after the value below.
		armErr := src.arm()
		if set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		if armErr != nil {
			return armErr
		}
	}
}

// timerfdSource is a timerfd on CLOCK_REALTIME. Its fd is non-blocking and given to os.NewFile,
// so a read waits in the runtime poller and a read deadline wakes it.
type timerfdSource struct {
	f     *os.File
	conn  syscall.RawConn
	ahead time.Duration
}

func openTimerfdSource(ahead time.Duration) (*timerfdSource, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("create a timerfd to watch the wall clock: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd-realtime")
	conn, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("watch the wall clock: %w", err)
	}
	return &timerfdSource{f: f, conn: conn, ahead: ahead}, nil
}

func (s *timerfdSource) arm() error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(time.Now().Add(s.ahead).UnixNano())}
	var serr error
	// Control, not Fd: Fd would switch the fd to blocking mode and lose the poller.
	if err := s.conn.Control(func(fd uintptr) {
		serr = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &spec, nil)
	}); err != nil {
		return fmt.Errorf("arm the wall clock's timerfd: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("arm the wall clock's timerfd: %w", serr)
	}
	return nil
}

func (s *timerfdSource) wait() (bool, error) {
	var expirations [8]byte
	_, err := s.f.Read(expirations[:])
	switch {
	case errors.Is(err, unix.ECANCELED):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read the wall clock's timerfd: %w", err)
	}
	return false, nil
}

// interrupt sets a read deadline in the past, which wakes a blocked read and fails later ones.
func (s *timerfdSource) interrupt() { s.f.SetReadDeadline(time.Unix(1, 0)) }

func (s *timerfdSource) close() error { return s.f.Close() }

//go:build linux

package sync

import "time"

// startProgress calls Options.Progress every interval from one goroutine; the returned function
// stops it and sends the final PhaseDone event.
func (r *runner) startProgress() (stop func()) {
	if r.opts.Progress == nil {
		return func() {}
	}
	interval := r.opts.ProgressInterval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.opts.Progress(r.snapshot())
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		p := r.snapshot()
		p.Phase = PhaseDone
		r.opts.Progress(p)
	}
}

func (r *runner) snapshot() Progress {
	p := Progress{
		Phase:      r.phase.Load().(Phase),
		FilesDone:  r.created.Load() + r.updated.Load() + r.metaOnly.Load() + r.deleted.Load(),
		BytesDone:  r.bytesCopied.Load() + r.bytesChecked.Load(),
		FilesTotal: r.filesTotal.Load(),
		BytesTotal: r.bytesTotal.Load(),
	}
	if p.Phase == PhaseScan {
		p.FilesTotal, p.BytesTotal = p.FilesDone, r.copyBytes.Load()
		p.FilesDone, p.BytesDone = 0, 0
	}
	if s := r.curPath.Load(); s != nil {
		p.Path = *s
	}
	return p
}

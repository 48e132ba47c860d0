//go:build linux

package sysrefresh

import "tails-backup/sysident"

// Check reads the identities (sysident.Identify) of the running system partition src and the
// backup's dst; differ is true when dst needs a refresh. A refresh that was interrupted leaves
// dst's identity files old, so differ stays true until a refresh completes.
func Check(src, dst string, opts Options) (srcID, dstID sysident.Identity, differ bool, err error) {
	if srcID, err = sysident.Identify(src, opts.ident()); err != nil {
		return
	}
	if dstID, err = sysident.Identify(dst, opts.ident()); err != nil {
		if me := asMountError(err, true); me != nil {
			err = me
		}
		return
	}
	return srcID, dstID, srcID.Digest != dstID.Digest, nil
}

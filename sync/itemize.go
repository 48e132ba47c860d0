package sync

import (
	"slices"
	"strings"
)

// Itemize writes c as `rsync -i` writes a change (its --itemize-changes format, YXcstpoguax):
//
//	>f+++++++++ new-file
//	cd+++++++++ new-folder/
//	cL+++++++++ new-link -> target
//	hf+++++++++ second-link => first-link
//	>f.st...... changed-file
//	.f...p..... file-whose-mode-changed
//	*deleting   deleted-file
//
// Two differences remain with rsync: a deleted folder is one line (rsync also lists what it
// holds), and a file whose mtime changed but whose content did not is a metadata change here
// (".f..t......": the engine compares the content; rsync sends the file, ">f..t......").
func (c Change) Itemize() string {
	name := c.Path
	if c.Path == "." || c.Dir {
		name = strings.TrimSuffix(c.Path, "/") + "/"
	}
	if c.Kind == ChangeDelete {
		return "*deleting   " + name
	}
	typ := c.Type
	if typ == 0 {
		typ = 'f'
		if c.Dir {
			typ = 'd'
		}
	}
	var b strings.Builder
	b.Grow(12 + len(name))
	has := func(list []string, w string) bool { return slices.Contains(list, w) }
	whole := c.Kind == ChangeCreate || (c.Kind == ChangeUpdate && has(c.What, "type"))
	switch {
	case c.LinkTo != "":
		b.WriteByte('h')
	case c.Kind == ChangeMetadata:
		b.WriteByte('.')
	case typ == 'f':
		b.WriteByte('>')
	default:
		b.WriteByte('c')
	}
	b.WriteByte(typ)
	if whole {
		b.WriteString("+++++++++")
	} else {
		what := c.What
		if c.Kind == ChangeUpdate {
			what = append(slices.Clip(c.What), c.Differs...)
		}
		flag := func(letter byte, names ...string) {
			for _, n := range names {
				if has(what, n) {
					b.WriteByte(letter)
					return
				}
			}
			b.WriteByte('.')
		}
		flag('c', "target", "device")
		flag('s', "size")
		flag('t', "mtime")
		flag('p', "mode")
		flag('o', "owner")
		flag('g', "group")
		b.WriteByte('.') // u: access and creation times are not mirrored
		b.WriteByte('.') // a: ACLs are xattrs here
		flag('x', "xattrs")
	}
	b.WriteByte(' ')
	b.WriteString(name)
	switch {
	case c.LinkTo != "":
		b.WriteString(" => " + c.LinkTo)
	case c.Target != "":
		b.WriteString(" -> " + c.Target)
	}
	return b.String()
}

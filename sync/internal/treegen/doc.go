// Package treegen builds real, deterministic directory trees on disk for the tests, the benchmark
// and the demo of the mirror engine: a large synthetic tree with every kind of entry and metadata
// the engine must reproduce (Bench), mutators that change some of its data or metadata, and a
// realistic Tails Persistent Storage (TailsSample).
//
// Everything is derived from a seed through math/rand/v2, so the same call gives the same tree
// (names, contents, owners, modes, xattrs, ACLs, nanosecond mtimes). The functions must run as root:
// they set owners, trusted.* xattrs and ACLs, and the file system must support user xattrs and ACLs
// (ext4 mounted with acl,user_xattr does).
package treegen

// Package beneath opens and lists entries through directory descriptors, never through a symlink nor out of the root directory they start from, so that a hostile tree cannot redirect its caller.
package beneath

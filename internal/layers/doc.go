// Package layers has no code: its test holds the import graph to the layers of docs/architecture.md, the unprivileged side never importing the root helper's packages.
package layers

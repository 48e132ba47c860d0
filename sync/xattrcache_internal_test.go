//go:build linux

package sync

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCacheUsable: the cases where a saved xattr cache may and may not be used.
func TestCacheUsable(t *testing.T) {
	saved := cacheIdentity{srcUUID: [16]byte{1}, dstUUID: [16]byte{2}, mountCount: 7, mountTime: 1700000000, lastCheck: 1690000000}
	with := func(f func(*cacheIdentity)) cacheIdentity { id := saved; f(&id); return id }
	tests := []struct {
		name   string
		now    cacheIdentity
		usable bool
	}{
		{"the same mount (two runs without unplugging)", saved, true},
		{"mounted once since: this run's mount", with(func(id *cacheIdentity) { id.mountCount++; id.mountTime += 3600 }), true},
		{"mounted once since, with a clock set back", with(func(id *cacheIdentity) { id.mountCount++; id.mountTime -= 3600 }), true},
		{"mounted twice since: once elsewhere", with(func(id *cacheIdentity) { id.mountCount += 2 }), false},
		{"mounted many times since", with(func(id *cacheIdentity) { id.mountCount += 40 }), false},
		{"count reset by e2fsck", with(func(id *cacheIdentity) { id.mountCount = 0; id.lastCheck += 3600 }), false},
		{"checked by e2fsck, then mounted elsewhere up to one more than saved", with(func(id *cacheIdentity) { id.mountCount++; id.lastCheck += 3600 }), false},
		{"count set back by tune2fs", with(func(id *cacheIdentity) { id.mountCount-- }), false},
		{"same count, another mount time (unmounted and count reset to it)", with(func(id *cacheIdentity) { id.mountTime++ }), false},
		{"another backup (its file system UUID)", with(func(id *cacheIdentity) { id.dstUUID[0] = 3; id.mountCount++ }), false},
		{"another source file system", with(func(id *cacheIdentity) { id.srcUUID[15] = 9 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := cacheUsable(saved, tt.now)
			if ok != tt.usable || ok != (why == "") {
				t.Errorf("cacheUsable = %v, %q; want usable %v and a reason exactly when not", ok, why, tt.usable)
			}
		})
	}
	wrap := cacheIdentity{mountCount: 0xffff}
	if ok, _ := cacheUsable(wrap, cacheIdentity{mountCount: 0}); !ok {
		t.Error("the count wraps at 65536: one mount after 65535 is 0")
	}
}

// TestDecodeCache: a cache file reads back as written; any damage makes it unreadable rather
// than wrong.
func TestDecodeCache(t *testing.T) {
	id := cacheIdentity{srcUUID: [16]byte{1, 2}, dstUUID: [16]byte{3, 4}, mountCount: 65535, mountTime: 4000000000, lastCheck: 3900000000}
	fps := []fingerprint{{1, 2}, {1, 3}, {9, 0}}
	var good bytes.Buffer
	if err := encodeCache(&good, id, len(fps), slices.Values(fps)); err != nil {
		t.Fatal(err)
	}
	gotID, gotFps, _, err := decodeCache(bytes.NewReader(good.Bytes()))
	if err != nil || gotID != id || len(gotFps) != len(fps) || gotFps[1] != fps[1] {
		t.Fatalf("decode of a good file: %+v %v %v", gotID, gotFps, err)
	}
	var unsorted bytes.Buffer
	if err := encodeCache(&unsorted, id, 2, slices.Values([]fingerprint{{2, 0}, {1, 0}})); err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := bytes.Clone(good.Bytes()); b[i] ^= 1; return b }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "EOF"},
		{"another version", append([]byte("tails-backup xattr cache 1\n"), good.Bytes()[27:]...), "version"},
		{"truncated", good.Bytes()[:good.Len()-9], "EOF"},
		{"longer", append(bytes.Clone(good.Bytes()), 0), "longer"},
		{"a fingerprint damaged", flip(good.Len() - 20), "checksum"},
		{"the identity damaged", flip(30), "checksum"},
		{"the count damaged", flip(27 + 56), ""},
		{"not sorted", unsorted.Bytes(), "sorted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fps, _, err := decodeCache(bytes.NewReader(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) || fps != nil {
				t.Errorf("decode: %d fingerprints, error %v; want an error about %q", len(fps), err, tt.want)
			}
		})
	}
}

// TestCacheMerged: what a save writes is, in order and once each, the loaded entries the run
// used and the ones it added, whatever the chunks.
func TestCacheMerged(t *testing.T) {
	fp := func(a uint64) fingerprint { return fingerprint{a, a * 3} }
	tests := []struct {
		name   string
		old    []uint64
		used   []int // indexes into old
		chunks [][]uint64
		want   []uint64
	}{
		{"nothing", nil, nil, nil, nil},
		{"first run", nil, nil, [][]uint64{{5, 1, 3}, {2, 4}}, []uint64{1, 2, 3, 4, 5}},
		{"no-op: all used", []uint64{1, 2, 3}, []int{0, 1, 2}, nil, []uint64{1, 2, 3}},
		{"some used, some added", []uint64{1, 2, 3, 7, 9}, []int{0, 3}, [][]uint64{{8, 2}}, []uint64{1, 2, 7, 8}},
		{"a hard link verified twice", nil, nil, [][]uint64{{6, 6}, {6}}, []uint64{6}},
		{"none used", []uint64{1, 2}, nil, [][]uint64{{3}}, []uint64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &XattrCache{}
			for _, x := range tt.old {
				c.old = append(c.old, fp(x))
			}
			c.hit = make([]atomic.Uint64, (len(c.old)+63)/64)
			for _, i := range tt.used {
				c.hit[i/64].Or(1 << (i % 64))
			}
			var chunks [][]fingerprint
			for _, ch := range tt.chunks {
				var fs []fingerprint
				for _, x := range ch {
					fs = append(fs, fp(x))
				}
				slices.SortFunc(fs, cmpFingerprint)
				chunks = append(chunks, fs)
			}
			var got []uint64
			for f := range c.merged(chunks) {
				got = append(got, f[0])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("merged = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCacheOffHeap: a million fingerprints, read, merged with a run's new ones and written
// again, never take the Go heap: it would count them twice (the collector lets the heap grow to
// twice what is live) and a million files must fit in 64 MiB.
func TestCacheOffHeap(t *testing.T) {
	const n = 1 << 20
	var file bytes.Buffer
	file.Grow(16*n + 128)
	seq := func(yield func(fingerprint) bool) {
		for i := range uint64(n) {
			if !yield(fingerprint{i, ^i}) {
				return
			}
		}
	}
	if err := encodeCache(&file, cacheIdentity{}, n, seq); err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	_, fps, mem, err := decodeCache(bytes.NewReader(file.Bytes()))
	if err != nil || len(fps) != n {
		t.Fatalf("decode: %d entries, %v", len(fps), err)
	}
	defer freeOffHeap(mem)
	c := &XattrCache{old: fps, hit: make([]atomic.Uint64, n/64), chunks: &mappings{}}
	for i := range c.hit {
		c.hit[i].Store(^uint64(0))
	}
	for i := range addedChunk * 3 { // a run that added 12,288 entries
		c.verifiedFingerprint(fingerprint{uint64(n + i), 0})
	}
	peak := heap()
	if err := encodeCache(io.Discard, cacheIdentity{}, n+addedChunk*3, c.merged(c.added)); err != nil {
		t.Fatal(err)
	}
	peak = max(peak, heap())
	c.chunks.free()
	if grew := int64(peak) - int64(before); grew > 2<<20 {
		t.Errorf("the heap grew by %d KiB for a million fingerprints, want them off the heap", grew>>10)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(&file) // counted in before: it must not be freed in between
}

// sortedFingerprints returns n distinct fingerprints spread as fingerprintOf spreads them,
// sorted, and as many that are not among them.
func sortedFingerprints(n int, seed uint64) (in, out []fingerprint) {
	for i := range uint64(2 * n) {
		fp := fingerprint{mix(seed ^ i), mix(^seed ^ i)}
		if i%2 == 0 {
			in = append(in, fp)
		} else {
			out = append(out, fp)
		}
	}
	slices.SortFunc(in, cmpFingerprint)
	return in, out
}

// TestBucketIndex: a lookup through the index finds every loaded fingerprint at its place and
// none of the others, whatever the number of entries, bunched fingerprints included (a
// forged file may hold anything sorted).
func TestBucketIndex(t *testing.T) {
	for _, n := range []int{1, 2, 7, 8, 9, 100, 4096, 30001} {
		in, out := sortedFingerprints(n, uint64(n))
		bunched := make([]fingerprint, n)
		for i := range bunched {
			bunched[i] = fingerprint{^uint64(0) - uint64(n-i)/3, uint64(i)} // top bucket, equal first words
		}
		for name, fps := range map[string][]fingerprint{"spread": in, "bunched": bunched} {
			x := newBucketIndex(fps)
			if len(x.start) != 1<<x.bits+1 || int(x.start[len(x.start)-1]) != len(fps) {
				t.Fatalf("%s %d: %d buckets ending at %d", name, n, len(x.start), x.start[len(x.start)-1])
			}
			for i, fp := range fps {
				lo, hi := x.bounds(fp)
				j, ok := slices.BinarySearchFunc(fps[lo:hi], fp, cmpFingerprint)
				if !ok || lo+j != i {
					t.Fatalf("%s %d: entry %d found: %v at %d (bucket %d..%d)", name, n, i, ok, lo+j, lo, hi)
				}
			}
			for _, fp := range out {
				lo, hi := x.bounds(fp)
				if _, ok := slices.BinarySearchFunc(fps[lo:hi], fp, cmpFingerprint); ok {
					t.Fatalf("%s %d: a fingerprint not loaded was found", name, n)
				}
			}
		}
	}
	if x := newBucketIndex(nil); len(x.start) != 2 || x.start[0] != 0 || x.start[1] != 0 {
		t.Fatalf("empty: %v", x.start)
	}
}

// BenchmarkXattrCacheLookup: looking up fingerprints, half of them loaded, in a cache of 30,000
// and of a million entries, by a binary search of the whole cache and through the index.
func BenchmarkXattrCacheLookup(b *testing.B) {
	for _, n := range []int{30000, 1 << 20} {
		in, out := sortedFingerprints(n, 1)
		probe := make([]fingerprint, 0, 2*n)
		for i := range in {
			probe = append(probe, in[i], out[i])
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(probe), func(i, j int) { probe[i], probe[j] = probe[j], probe[i] })
		x := newBucketIndex(in)
		b.Run(fmt.Sprintf("entries=%d/binary", n), func(b *testing.B) {
			found := 0
			for i := 0; b.Loop(); i++ {
				if _, ok := slices.BinarySearchFunc(in, probe[i%len(probe)], cmpFingerprint); ok {
					found++
				}
			}
			_ = found
		})
		b.Run(fmt.Sprintf("entries=%d/index", n), func(b *testing.B) {
			found := 0
			for i := 0; b.Loop(); i++ {
				fp := probe[i%len(probe)]
				lo, hi := x.bounds(fp)
				if _, ok := slices.BinarySearchFunc(in[lo:hi], fp, cmpFingerprint); ok {
					found++
				}
			}
			_ = found
		})
	}
}

// encodedCache is the file of a cache of fps, sorted, saved with id.
func encodedCache(tb testing.TB, id cacheIdentity, fps []fingerprint) []byte {
	tb.Helper()
	var file bytes.Buffer
	if err := encodeCache(&file, id, len(fps), slices.Values(fps)); err != nil {
		tb.Fatal(err)
	}
	return file.Bytes()
}

// BenchmarkDecodeCache: loading the cache of an update of 30,000 files.
func BenchmarkDecodeCache(b *testing.B) {
	in, _ := sortedFingerprints(30000, 3)
	file := encodedCache(b, cacheIdentity{}, in)
	for b.Loop() {
		_, fps, mem, err := decodeCache(bytes.NewReader(file))
		if err != nil || len(fps) != len(in) {
			b.Fatalf("%d entries, %v", len(fps), err)
		}
		freeOffHeap(mem)
	}
}

// FuzzDecodeCache: a cache file is outside input (whoever had the backup stick may have put
// anything there). Whatever its bytes, decodeCache returns an error or a sorted cache whose
// file, written again, is those very bytes; it never panics.
func FuzzDecodeCache(f *testing.F) {
	in, _ := sortedFingerprints(40, 5)
	id := cacheIdentity{srcUUID: [16]byte{1, 2}, dstUUID: [16]byte{3}, mountCount: 7, mountTime: 1700000000, lastCheck: 1690000000}
	good := encodedCache(f, id, in)
	f.Add(good)
	f.Add(encodedCache(f, cacheIdentity{}, nil))
	f.Add(good[:len(good)-1])
	f.Add(good[:len(cacheMagic)+40])
	f.Add(append(slices.Clone(good), 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		gotID, fps, mem, err := decodeCache(bytes.NewReader(data))
		if err != nil {
			if fps != nil || mem != nil {
				t.Fatalf("an error (%v) with %d entries", err, len(fps))
			}
			return
		}
		defer freeOffHeap(mem)
		if !slices.IsSortedFunc(fps, cmpFingerprint) {
			t.Fatal("a cache not sorted")
		}
		if again := encodedCache(t, gotID, slices.Clone(fps)); !bytes.Equal(again, data) {
			t.Fatalf("written again, the %d bytes decoded are %d other bytes", len(data), len(again))
		}
	})
}

package redact

import "strings"

// headLen is the prefix length the finder indexes. Every needle is at least
// this long: secrets have at least minSecretLen bytes and their encodings are
// no shorter (the shifted base64 parts have at least 10 characters).
const headLen = minSecretLen

// filterBits is the size of the finder's bit filter.
const filterBits = 1 << 16

// finder locates every occurrence of many needles in one pass over the text,
// so the cost of scanning clean output does not grow with the number of
// registered secrets. It slides an 8-byte window over the text, tests a bit
// filter keyed by the window's hash and only on a hit compares the needles
// that start with that window.
type finder struct {
	filter []uint64            // filterBits bits; set for every needle head
	heads  map[uint64][]string // needles by their first headLen bytes
}

func newFinder(needles []string) *finder {
	f := &finder{filter: make([]uint64, filterBits/64), heads: map[uint64][]string{}}
	for _, n := range needles {
		k := load(n)
		f.heads[k] = append(f.heads[k], n)
		h := slot(k)
		f.filter[h/64] |= 1 << (h % 64)
	}
	return f
}

// find appends a span for every (possibly overlapping) needle occurrence in
// s, in order of position.
func (f *finder) find(s string, out []span) []span {
	if len(f.heads) == 0 {
		return out
	}
	var w uint64
	for i := 0; i < len(s); i++ {
		w = w>>8 | uint64(s[i])<<56 // s[i-7:i+1], little-endian
		if i < headLen-1 {
			continue
		}
		if h := slot(w); f.filter[h/64]&(1<<(h%64)) != 0 {
			out = f.verify(s, i+1-headLen, w, out)
		}
	}
	return out
}

// verify appends spans for the needles with head w that occur at s[at:].
func (f *finder) verify(s string, at int, w uint64, out []span) []span {
	for _, n := range f.heads[w] {
		if strings.HasPrefix(s[at:], n) {
			out = append(out, span{at, at, at + len(n)})
		}
	}
	return out
}

// load returns the first headLen bytes of n as a little-endian integer.
func load(n string) uint64 {
	var w uint64
	for i := headLen - 1; i >= 0; i-- {
		w = w<<8 | uint64(n[i])
	}
	return w
}

// slot hashes a head to a filter bit (Fibonacci hashing).
func slot(w uint64) uint64 {
	return (w * 0x9E3779B97F4A7C15) >> (64 - 16)
}

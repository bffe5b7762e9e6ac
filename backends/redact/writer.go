package redact

import (
	"io"
	"strings"
	"sync"
)

const (
	// patternCarry is how many trailing bytes Writer holds back so that a
	// Layer B pattern arriving in pieces is still seen whole.
	patternCarry = 1024
	// maxHold bounds the held-back data when one match keeps growing (an
	// endless run of token characters); beyond it the match is emitted masked.
	maxHold = 64 << 10
)

// Writer redacts a byte stream on its way to an underlying writer. A secret
// may be split across Write calls, so Writer holds back the tail of the data
// that could still be the start of a secret: at most the longest encoded
// secret minus one byte, or 1 KiB for the pattern rules, whichever is more.
// Complete lines are passed on at once (no rule matches across a line break).
// Call Flush or Close when the stream ends to emit the held-back tail. A
// Writer is safe for concurrent use.
type Writer struct {
	r   *Redactor
	w   io.Writer
	mu  sync.Mutex
	buf []byte
	err error
}

// Writer returns a writer that redacts everything written to it before
// passing it on to w. Its dynamic type is *Writer: type-assert to call Flush
// or Close at the end of the stream, or the held-back tail is never written.
// Secrets added to r later apply from the next Write on.
func (r *Redactor) Writer(w io.Writer) io.Writer {
	return &Writer{r: r, w: w}
}

// Write buffers p and writes every part of the stream that is now known not to
// be the start of a secret, redacted, to the underlying writer. It returns
// len(p) unless an earlier write failed; errors of the underlying writer are
// returned and sticky.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	w.err = w.emit(false)
	return len(p), w.err
}

// Flush redacts and writes all held-back data. Call it when the stream ends
// (or use Close); data written afterwards starts a new unit, so a secret split
// across a Flush is not recognised.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.emit(true)
	}
	return w.err
}

// Close flushes the Writer. It does not close the underlying writer.
func (w *Writer) Close() error { return w.Flush() }

// emit writes the redacted safe prefix of the buffer (all of it when all is
// set) and keeps the rest.
func (w *Writer) emit(all bool) error {
	if len(w.buf) == 0 {
		return nil
	}
	st := w.r.load()
	s := string(w.buf)
	spans := st.spans(s)
	cut := len(s)
	if !all {
		cut = st.safeCut(s, spans)
	}
	if cut == 0 {
		return nil
	}
	w.buf = append(w.buf[:0], s[cut:]...)
	_, err := io.WriteString(w.w, apply(s[:cut], spans))
	return err
}

// safeCut returns how many leading bytes of s can be emitted now: everything
// except a carry that may still grow into a secret, extended to the last line
// break when no secret contains one, and moved back so that it never splits
// a match (including its context, such as "password=").
func (st *state) safeCut(s string, spans []span) int {
	cut := len(s) - max(st.maxLen-1, patternCarry)
	if nl := strings.LastIndexAny(s, "\r\n"); !st.hasNL && nl+1 > cut {
		cut = nl + 1
	}
	for cut > 0 {
		sp, ok := straddling(spans, cut)
		if !ok {
			return cut
		}
		if len(s)-sp.ctx > maxHold {
			return forcedCut(spans, sp.end)
		}
		cut = sp.ctx
	}
	return 0
}

// straddling returns a span whose match includes bytes on both sides of cut.
func straddling(spans []span, cut int) (span, bool) {
	for _, sp := range spans {
		if sp.ctx < cut && cut < sp.end {
			return sp, true
		}
	}
	return span{}, false
}

// forcedCut moves cut forward until it splits no masked range, so that an
// overlong match is emitted masked instead of being held back for ever.
func forcedCut(spans []span, cut int) int {
	for _, sp := range spans {
		if sp.start < cut && cut < sp.end {
			cut = sp.end
		}
	}
	return cut
}

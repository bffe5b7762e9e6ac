package gitremote

import (
	"net/http"
	"sync/atomic"
	"time"
)

// uploadRate holds a server's fetch pacing (bytes per second, 0 for
// none), set by SetUploadRate.
type uploadRate struct{ bps atomic.Int64 }

// SetUploadRate paces what fetches and clones receive (git-upload-pack
// responses) to at most bytesPerSecond, from the next request on; 0 or
// less removes the pacing. Tests use it to watch a transfer while it runs
// (a size limit stopping it half way, say).
func (s *Server) SetUploadRate(bytesPerSecond int64) { s.rate.bps.Store(max(bytesPerSecond, 0)) }

// paced wraps w so that it sends at most bps bytes per second, in slices
// of a twentieth of a second, flushed as they go.
func paced(w http.ResponseWriter, bps int64) http.ResponseWriter {
	return &pacedWriter{ResponseWriter: w, slice: max(int(bps/20), 1)}
}

type pacedWriter struct {
	http.ResponseWriter
	slice int
	next  time.Time
}

func (w *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		if d := time.Until(w.next); d > 0 {
			time.Sleep(d) // pacing the stream, not waiting for a condition
		}
		n := min(len(b), w.slice)
		m, err := w.ResponseWriter.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		_ = http.NewResponseController(w.ResponseWriter).Flush()
		w.next = time.Now().Add(50 * time.Millisecond)
		b = b[n:]
	}
	return written, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *pacedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

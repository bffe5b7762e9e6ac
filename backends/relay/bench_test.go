package relay

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/backendtest"
)

// BenchmarkRelayThroughput: clone and push of a 5,000-file repository (100
// commits) through the relay against the same git talking to the remote
// directly with the token, alternating, on loopback. It reports each
// direction's throughput through the relay as a ratio of direct
// (clone-ratio, push-ratio: median direct time / median relay time) and
// the medians. A push is a commit replacing 30 files, to a new branch.
func BenchmarkRelayThroughput(b *testing.B) {
	w := newBenchWorld(b)
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testToken))
	direct := w.remote.RepoURL("big")
	var cloneDirect, cloneRelay, pushDirect, pushRelay []time.Duration
	work := b.TempDir()
	seed := filepath.Join(work, "seed")
	benchGit(b, work, "-c", "http.extraHeader="+auth, "clone", "--quiet", direct, seed)
	b.ResetTimer()
	for i := range b.N {
		for _, viaRelay := range order(i) {
			dir := filepath.Join(work, fmt.Sprintf("c%d-%v", i, viaRelay))
			start := time.Now()
			if viaRelay {
				secret, revoke := w.mintBench(b, Fetch)
				benchGit(b, work, "clone", "--quiet", URL(w.relay.URL, secret), dir)
				_ = revoke(b.Context())
				cloneRelay = append(cloneRelay, time.Since(start))
			} else {
				benchGit(b, work, "-c", "http.extraHeader="+auth, "clone", "--quiet", direct, dir)
				cloneDirect = append(cloneDirect, time.Since(start))
			}
			b.StopTimer()
			_ = os.RemoveAll(dir)
			branch := fmt.Sprintf("agent/bench-%d-%v", i, viaRelay)
			benchGit(b, seed, "checkout", "--quiet", "-B", branch, "origin/main")
			for f := range 30 {
				p := filepath.Join(seed, fmt.Sprintf("d%02d", f%50), fmt.Sprintf("bench-%d.txt", f))
				_ = os.MkdirAll(filepath.Dir(p), 0o755)
				_ = os.WriteFile(p, []byte(fmt.Sprintf("%s %d %d\n", branch, f, time.Now().UnixNano())), 0o644)
			}
			benchGit(b, seed, "add", "-A")
			benchGit(b, seed, "commit", "--quiet", "-m", branch)
			b.StartTimer()
			start = time.Now()
			if viaRelay {
				secret, revoke := w.mintBench(b, Push)
				benchGit(b, seed, "push", "--quiet", URL(w.relay.URL, secret), "HEAD:refs/heads/"+branch)
				_ = revoke(b.Context())
				pushRelay = append(pushRelay, time.Since(start))
			} else {
				benchGit(b, seed, "-c", "http.extraHeader="+auth, "push", "--quiet", direct, "HEAD:refs/heads/"+branch)
				pushDirect = append(pushDirect, time.Since(start))
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(median(cloneDirect))/float64(median(cloneRelay)), "clone-ratio")
	b.ReportMetric(float64(median(pushDirect))/float64(median(pushRelay)), "push-ratio")
	b.ReportMetric(ms(median(cloneDirect)), "clone-direct-ms")
	b.ReportMetric(ms(median(cloneRelay)), "clone-relay-ms")
	b.ReportMetric(ms(median(pushDirect)), "push-direct-ms")
	b.ReportMetric(ms(median(pushRelay)), "push-relay-ms")
}

// order alternates which goes first, so that neither always meets a warm
// cache.
func order(i int) []bool {
	if i%2 == 0 {
		return []bool{false, true}
	}
	return []bool{true, false}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func benchGit(b *testing.B, dir string, args ...string) {
	b.Helper()
	if out, err := gitIn(b, dir, args...); err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// benchWorld is world for a benchmark, with the 5,000-file repository.
func newBenchWorld(b *testing.B) *world {
	w := newWorldTB(b, Config{})
	if err := w.remote.CreateRepo(b.Context(), "big", nil); err != nil {
		b.Fatal(err)
	}
	backendtest.WriteHistory(b, filepath.Join(w.remoteRoot, "big.git"), 5000, 100)
	return w
}

func (w *world) mintBench(b *testing.B, dir Direction) (string, func(context.Context) error) {
	secret, revoke, err := Mint(b.Context(), w.store, Capability{Project: "alpha", Workspace: "alpha/bench",
		Remote: w.remote.RepoURL("big"), Dir: dir}, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	return secret, revoke
}

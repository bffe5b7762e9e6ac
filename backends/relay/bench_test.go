package relay_test

import (
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends/relay"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/gitremote"
)

// BenchmarkRelayThroughput: clone and push of a 5,000-file repository (100
// commits) through the relay against the same git talking to the remote
// directly with the token, alternating, on loopback. It reports each
// direction's throughput through the relay as a ratio of direct
// (clone-ratio, push-ratio: median direct time / median relay time) and
// the medians. A push is a commit replacing 30 files, to a new branch.
func BenchmarkRelayThroughput(b *testing.B) {
	const user, token = "x-access-token", "bench-token-0123456789"
	root := b.TempDir()
	remote, err := gitremote.New(gitremote.Config{Root: root, Username: user, Token: token})
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = remote.Close() })
	if err := remote.CreateRepo(b.Context(), "big", nil); err != nil {
		b.Fatal(err)
	}
	backendtest.WriteHistory(b, filepath.Join(root, "big.git"), 5000, 100)
	store := relay.NewMemoryStore()
	h, err := relay.New(relay.Config{Store: store,
		Credentials: func(string, relay.Direction) (string, string, bool) { return user, token, true }})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	mint := func(dir relay.Direction) (string, func()) {
		secret, revoke, err := relay.Mint(b.Context(), store, relay.Capability{Project: "alpha", Workspace: "alpha/bench",
			Remote: remote.RepoURL("big"), Dir: dir}, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		return relay.URL(srv.URL, secret), func() { _ = revoke(b.Context()) }
	}
	auth := "http.extraHeader=Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token))
	direct := remote.RepoURL("big")
	var cloneDirect, cloneRelay, pushDirect, pushRelay []time.Duration
	work := b.TempDir()
	seed := filepath.Join(work, "seed")
	benchGit(b, work, "-c", auth, "clone", "--quiet", direct, seed)
	b.ResetTimer()
	for i := range b.N {
		for _, viaRelay := range order(i) {
			dir := filepath.Join(work, fmt.Sprintf("c%d-%v", i, viaRelay))
			start := time.Now()
			if viaRelay {
				u, revoke := mint(relay.Fetch)
				benchGit(b, work, "clone", "--quiet", u, dir)
				revoke()
				cloneRelay = append(cloneRelay, time.Since(start))
			} else {
				benchGit(b, work, "-c", auth, "clone", "--quiet", direct, dir)
				cloneDirect = append(cloneDirect, time.Since(start))
			}
			b.StopTimer()
			_ = os.RemoveAll(dir)
			branch := fmt.Sprintf("agent/bench-%d-%v", i, viaRelay)
			benchGit(b, seed, "checkout", "--quiet", "-B", branch, "origin/main")
			for f := range 30 {
				p := filepath.Join(seed, fmt.Sprintf("d%02d", f%50), fmt.Sprintf("bench-%d.txt", f))
				_ = os.MkdirAll(filepath.Dir(p), 0o755)
				_ = os.WriteFile(p, fmt.Appendf(nil, "%s %d %d\n", branch, f, time.Now().UnixNano()), 0o644)
			}
			benchGit(b, seed, "add", "-A")
			benchGit(b, seed, "commit", "--quiet", "-m", branch)
			b.StartTimer()
			start = time.Now()
			if viaRelay {
				u, revoke := mint(relay.Push)
				benchGit(b, seed, "push", "--quiet", u, "HEAD:refs/heads/"+branch)
				revoke()
				pushRelay = append(pushRelay, time.Since(start))
			} else {
				benchGit(b, seed, "-c", auth, "push", "--quiet", direct, "HEAD:refs/heads/"+branch)
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

// benchGit runs git in dir with no credential of its own.
func benchGit(b *testing.B, dir string, args ...string) {
	b.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + b.TempDir(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=ada", "GIT_AUTHOR_EMAIL=ada@agents.invalid", "GIT_COMMITTER_NAME=ada", "GIT_COMMITTER_EMAIL=ada@agents.invalid"}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

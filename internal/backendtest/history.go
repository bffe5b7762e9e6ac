package backendtest

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// WriteHistory writes into the empty bare repository at dir, with
// one git fast-import, a first commit on main of files files of about
// 1 KiB in 50 directories and then commits more commits, each replacing
// 30 files (chosen at random, seeded) with 1–4 KiB of new random text.
func WriteHistory(t testing.TB, dir string, files, commits int) {
	t.Helper()
	cmd := exec.Command("git", "--git-dir="+dir, "fast-import", "--quiet", "--done")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(in, 1<<20)
	path := func(i int) string { return fmt.Sprintf("dir%02d/file%04d.txt", i%50, i) }
	data := func(s string) { fmt.Fprintf(w, "data %d\n%s\n", len(s), s) }
	line := strings.Repeat("x", 63) + "\n"
	rng := rand.New(rand.NewPCG(1, uint64(commits)))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	random := func(n int) string {
		buf := make([]byte, n)
		for i := range buf {
			if i%64 == 63 {
				buf[i] = '\n'
			} else {
				buf[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		return string(buf)
	}
	when := int64(1_700_000_000)
	for c := 0; c <= commits; c++ {
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Bench <bench@gitgate.invalid> %d +0000\n", when+int64(c)*60)
		data(fmt.Sprintf("commit %d", c))
		if c == 0 {
			for i := range files {
				fmt.Fprintf(w, "M 100644 inline %s\n", path(i))
				data(fmt.Sprintf("file %d\n", i) + strings.Repeat(line, 16))
			}
			continue
		}
		for range 30 {
			fmt.Fprintf(w, "M 100644 inline %s\n", path(rng.IntN(files)))
			data(fmt.Sprintf("file changed in commit %d\n", c) + random(1024+rng.IntN(3*1024)))
		}
	}
	fmt.Fprintf(w, "done\n")
	if err := errors.Join(w.Flush(), in.Close(), cmd.Wait()); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, stderr.String())
	}
}

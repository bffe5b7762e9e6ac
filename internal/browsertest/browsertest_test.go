package browsertest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// open is Open for a test: Chromium must be there (make chromium installs
// it), the test's time is bounded, the profile lives in the test's temp
// directory.
func open(t *testing.T, html string) *Page {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "page.html")
	if err := os.WriteFile(path, []byte(html), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := Open(ctx, path, filepath.Join(dir, "profile"), "svg")
	if errors.Is(err, ErrNoChromium) {
		t.Fatalf("%v: this test needs the browser and does not skip", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The detectors detect: a page that fetches an image from another host is
// seen asking for it, and the same page under the report's policy is seen
// refusing it (a CSP violation in the log) — so that a report test that
// finds neither has looked.
func TestOpenSeesRequestsAndPolicyViolations(t *testing.T) {
	const img = `<img src="http://127.0.0.1:9/probe.png" alt="probe"><svg width="10" height="20"></svg>`
	p := open(t, `<!DOCTYPE html><html><head><title>t</title></head><body>`+img+`</body></html>`)
	if !slices.Contains(p.Requests, "http://127.0.0.1:9/probe.png") || len(p.Blocked) != 0 {
		t.Errorf("requests %q, blocked %q: the image's request was not seen, or seen refused", p.Requests, p.Blocked)
	}
	if len(p.Boxes) != 1 || p.Boxes[0].Width != 10 || p.Boxes[0].Height != 20 {
		t.Errorf("boxes %v; want one of 10×20", p.Boxes)
	}
	if len(p.Screenshot) < 8 || string(p.Screenshot[1:4]) != "PNG" {
		t.Errorf("the screenshot is no PNG (%d bytes)", len(p.Screenshot))
	}

	p = open(t, `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`+
		`<title>t</title></head><body>`+img+`</body></html>`)
	if got := p.Blocked["http://127.0.0.1:9/probe.png"]; got != "csp" {
		t.Errorf("blocked %q: the policy did not stop the image", p.Blocked)
	}
	if !slices.ContainsFunc(p.Messages, func(m string) bool { return strings.Contains(m, "Content Security Policy") }) {
		t.Errorf("messages %q: no CSP violation logged", p.Messages)
	}
}

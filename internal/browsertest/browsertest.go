// Package browsertest opens a page in a real browser — Debian's headless
// Chromium, driven over the DevTools protocol by chromedp — and reports
// what the browser did with it: every request it made, every console and
// log message (a Content-Security-Policy violation among them), the
// rendered boxes of the elements a selector matches, and a screenshot.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// ErrNoChromium says the browser is not installed.
var ErrNoChromium = errors.New("browsertest: " + ChromiumPath + " is missing: install Debian's chromium (make chromium, or apt-get install chromium)")

// Box is an element's rendered size in CSS pixels.
type Box struct {
	Width  float64 `json:"w"`
	Height float64 `json:"h"`
}

// Page is what the browser did with one page.
type Page struct {
	// Requests are the URLs the browser was about to ask for, the page's
	// own first (a request the page's Content-Security-Policy then refuses
	// is here too, and in Blocked).
	Requests []string
	// Blocked are the requests the browser refused to make, with why
	// ("csp", "mixed-content", …).
	Blocked map[string]string
	// Messages are the console's and the log's entries ("level source:
	// text"); Content-Security-Policy violations are logged there.
	Messages []string
	// Boxes are the bounding client rectangles of the elements the
	// selector matched, in document order.
	Boxes []Box
	// Screenshot is a PNG of the whole page.
	Screenshot []byte
}

// Open loads the file at path in a fresh headless Chromium (its profile
// in userDataDir, which the caller removes) and measures the elements
// matching selector once the page has loaded. It needs no network: the
// browser is told not to reach out on its own (background networking,
// component updates, sync, QUIC are off), so that every request it makes
// is the page's.
func Open(ctx context.Context, path, userDataDir, selector string) (*Page, error) {
	if _, err := os.Stat(ChromiumPath); err != nil {
		return nil, fmt.Errorf("%w (%w)", ErrNoChromium, err)
	}
	pageURL, err := URL(path)
	if err != nil {
		return nil, fmt.Errorf("browsertest: %w", err)
	}

	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(userDataDir),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var mu sync.Mutex
	page := &Page{Blocked: map[string]string{}}
	urls := map[network.RequestID]string{}
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			page.Requests = append(page.Requests, ev.Request.URL)
			urls[ev.RequestID] = ev.Request.URL
		case *network.EventLoadingFailed:
			if ev.BlockedReason != "" {
				page.Blocked[urls[ev.RequestID]] = string(ev.BlockedReason)
			}
		case *log.EventEntryAdded:
			page.Messages = append(page.Messages, fmt.Sprintf("%s %s: %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text))
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			page.Messages = append(page.Messages, fmt.Sprintf("%s console: %s", ev.Type, strings.Join(args, " ")))
		case *runtime.EventExceptionThrown:
			page.Messages = append(page.Messages, "error exception: "+ev.ExceptionDetails.Text)
		}
	}); err != nil {
		return nil, fmt.Errorf("browsertest: start the browser: %w", err)
	}

	// Navigate returns once the page has loaded.
	if err := chromedp.Do(bctx, chromedp.Navigate(pageURL)); err != nil {
		return nil, fmt.Errorf("browsertest: open %s: %w", pageURL, err)
	}
	boxes, err := chromedp.Run(bctx, chromedp.Evaluate[[]Box](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q), e => { const r = e.getBoundingClientRect(); return {w: r.width, h: r.height}; })`, selector)))
	if err != nil {
		return nil, fmt.Errorf("browsertest: measure %q: %w", selector, err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		return nil, fmt.Errorf("browsertest: screenshot: %w", err)
	}
	// Closing the browser delivers the events still queued, and waits for
	// it to exit before its profile directory is removed.
	if err := chromedp.Cancel(bctx); err != nil {
		return nil, fmt.Errorf("browsertest: close the browser: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	page.Boxes, page.Screenshot = boxes, shot
	return page, nil
}

// URL is the file URL Open loads for path.
func URL(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: abs}).String(), nil
}

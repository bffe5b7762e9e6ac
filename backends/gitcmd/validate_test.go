package gitcmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/backends"
)

var githubOnly = RemotePolicy{Schemes: []string{"https"}, Hosts: []string{"github.com"}}

func TestValidateURL(t *testing.T) {
	withPort := RemotePolicy{Schemes: []string{"https"}, Hosts: []string{"git.example.com:8443"}}
	both := RemotePolicy{Schemes: []string{"http", "https"}, Hosts: []string{"github.com"}}
	tests := []struct {
		name   string
		raw    string
		policy RemotePolicy
		want   string            // normalised URL when accepted
		cat    backends.Category // category when refused
	}{
		{"plain https", "https://github.com/o/r.git", githubOnly, "https://github.com/o/r.git", ""},
		{"no .git suffix", "https://github.com/o/r", githubOnly, "https://github.com/o/r", ""},
		{"uppercase host and scheme", "HTTPS://GitHub.COM/o/r.git", githubOnly, "https://github.com/o/r.git", ""},
		{"host:port allowed", "https://git.example.com:8443/o/r.git", withPort, "https://git.example.com:8443/o/r.git", ""},
		{"http allowed by policy", "http://github.com/o/r.git", both, "http://github.com/o/r.git", ""},

		{"ssh", "ssh://git@github.com/o/r.git", githubOnly, "", backends.Forbidden},
		{"ssh option injection", "ssh://-oProxyCommand=touch%20x/o/r", githubOnly, "", backends.InvalidArgument},
		{"file", "file:///srv/other/repo.git", githubOnly, "", backends.Forbidden},
		{"http when only https", "http://github.com/o/r.git", githubOnly, "", backends.Forbidden},
		{"ext transport", "ext::git-remote-evil", githubOnly, "", backends.InvalidArgument},
		{"ext transport with shell", "ext::sh -c touch% /tmp/pwn", githubOnly, "", backends.InvalidArgument},
		{"fd transport", "fd::3", githubOnly, "", backends.InvalidArgument},
		{"scp-like", "git@github.com:o/r.git", githubOnly, "", backends.InvalidArgument},
		{"absolute local path", "/srv/other-tenant/repo", githubOnly, "", backends.InvalidArgument},
		{"relative local path", "../../x", githubOnly, "", backends.InvalidArgument},
		{"short option", "-u touch /tmp/pwn", githubOnly, "", backends.InvalidArgument},
		{"long option", "--upload-pack=touch /tmp/pwn", githubOnly, "", backends.InvalidArgument},
		{"user and password", "https://user:pass@github.com/o/r.git", githubOnly, "", backends.InvalidArgument},
		{"token as user", "https://ghp_abc@github.com/o/r.git", githubOnly, "", backends.InvalidArgument},
		{"allowed host as userinfo", "https://github.com@evil.example/o/r.git", githubOnly, "", backends.InvalidArgument},
		{"query", "https://github.com/o/r.git?x=1", githubOnly, "", backends.InvalidArgument},
		{"empty query", "https://github.com/o/r.git?", githubOnly, "", backends.InvalidArgument},
		{"fragment", "https://github.com/o/r.git#main", githubOnly, "", backends.InvalidArgument},
		{"dot-dot segment", "https://github.com/o/../r.git", githubOnly, "", backends.InvalidArgument},
		{"encoded dot-dot", "https://github.com/o/%2e%2e/r.git", githubOnly, "", backends.InvalidArgument},
		{"dot segment", "https://github.com/o/./r.git", githubOnly, "", backends.InvalidArgument},
		{"hidden segment", "https://github.com/o/.git", githubOnly, "", backends.InvalidArgument},
		{"no path", "https://github.com", githubOnly, "", backends.InvalidArgument},
		{"root path", "https://github.com/", githubOnly, "", backends.InvalidArgument},
		{"empty segment", "https://github.com/o//r.git", githubOnly, "", backends.InvalidArgument},
		{"space in path", "https://github.com/o/r x.git", githubOnly, "", backends.InvalidArgument},
		{"encoded newline in path", "https://github.com/o/r%0a.git", githubOnly, "", backends.InvalidArgument},
		{"tab", "https://github.com/o/r\t.git", githubOnly, "", backends.InvalidArgument},
		{"CR", "https://github.com/o/r\r.git", githubOnly, "", backends.InvalidArgument},
		{"NUL", "https://github.com/o/r\x00.git", githubOnly, "", backends.InvalidArgument},
		{"CVE-2020-5260 newline", "https://github.com/o/r\nhost=evil.example", githubOnly, "", backends.InvalidArgument},
		{"C1 control", "https://github.com/o/r\u0085.git", githubOnly, "", backends.InvalidArgument},
		{"empty host (fsck rule)", "https:///evil.example/x", githubOnly, "", backends.InvalidArgument},
		{"empty host with port", "https://:443/o/r.git", RemotePolicy{Schemes: []string{"https"}, Hosts: []string{":443"}}, "", backends.Forbidden},
		{"host not allowed", "https://evil.example/o/r.git", githubOnly, "", backends.Forbidden},
		{"allowed host as suffix", "https://github.com.evil.example/o/r.git", githubOnly, "", backends.Forbidden},
		{"allowed host as label suffix", "https://evilgithub.com/o/r.git", githubOnly, "", backends.Forbidden},
		{"subdomain of allowed host", "https://gist.github.com/o/r.git", githubOnly, "", backends.Forbidden},
		{"trailing-dot host", "https://github.com./o/r.git", githubOnly, "", backends.Forbidden},
		{"port not allowed", "https://github.com:8443/o/r.git", githubOnly, "", backends.Forbidden},
		{"empty port", "https://github.com:/o/r.git", githubOnly, "", backends.Forbidden},
		{"other port than allowed", "https://git.example.com:9443/o/r.git", withPort, "", backends.Forbidden},
		{"port omitted when only host:port allowed", "https://git.example.com/o/r.git", withPort, "", backends.Forbidden},
		{"empty", "", githubOnly, "", backends.InvalidArgument},
		{"over-long", "https://github.com/o/" + strings.Repeat("r", MaxURLLength), githubOnly, "", backends.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidateURL(tt.raw, tt.policy)
			if cat := backends.CategoryOf(err); cat != tt.cat || got != tt.want {
				t.Fatalf("ValidateURL(%q) = %q, %v (category %q); want %q, category %q", tt.raw, got, err, cat, tt.want, tt.cat)
			}
		})
	}
}

func TestValidateURLLengthBoundary(t *testing.T) {
	prefix := "https://github.com/o/"
	atLimit := prefix + strings.Repeat("r", MaxURLLength-len(prefix))
	if got, err := ValidateURL(atLimit, githubOnly); err != nil || got != atLimit {
		t.Errorf("URL of exactly %d bytes: got %q, %v; want accepted unchanged", MaxURLLength, got, err)
	}
	if _, err := ValidateURL(atLimit+"r", githubOnly); backends.CategoryOf(err) != backends.InvalidArgument {
		t.Errorf("URL of %d bytes: err = %v, want invalid_argument", MaxURLLength+1, err)
	}
}

func TestCredentialHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/o/r.git":           "https://github.com",
		"https://git.example.com:8443/o/r.git": "https://git.example.com:8443",
	} {
		if got := CredentialHost(in); got != want {
			t.Errorf("CredentialHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateBranch(t *testing.T) {
	valid := []string{"main", "feature/x-1", "a.b", "release_1.2", "A", strings.Repeat("b", MaxRefLength)}
	for _, name := range valid {
		if err := ValidateBranch(name); err != nil {
			t.Errorf("ValidateBranch(%q) = %v, want nil", name, err)
		}
	}
	invalid := []string{
		"", "-x", "--force", "-D", ".x", "x.", "x/", "/x", "a//b", "a..b", "x.lock", "a/b.lock", "a.lock/b", "a/.b",
		"@{", "a@{1}", "@", "HEAD", "+main", ":main", "main:main", "refs/heads/*",
		strings.Repeat("a", 40), strings.Repeat("F", 40), strings.Repeat("0", 64),
		"a b", "a\tb", "a\nb", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "a\x00b", "a\x7fb",
		"m\u0430in", "main\u202e", "\u202emain", strings.Repeat("b", MaxRefLength+1),
	}
	for _, name := range invalid {
		if cat := backends.CategoryOf(ValidateBranch(name)); cat != backends.InvalidArgument {
			t.Errorf("ValidateBranch(%q): category %q, want invalid_argument", name, cat)
		}
	}
}

func TestValidateRev(t *testing.T) {
	valid := []string{"HEAD", "HEAD~2", "HEAD^", "HEAD^2~1", "main^", "main~10", "abc1234", "ABCD", strings.Repeat("a", 64), "origin/main", "v1.2.3"}
	for _, rev := range valid {
		if err := ValidateRev(rev); err != nil {
			t.Errorf("ValidateRev(%q) = %v, want nil", rev, err)
		}
	}
	invalid := []string{"", "~2", "--all", "-x", "--output=/tmp/x", "a..b", "a...b", "HEAD@{1}", "main:path", "@", ".hidden", "a b", "HEAD~99999", "main\n"}
	for _, rev := range invalid {
		if cat := backends.CategoryOf(ValidateRev(rev)); cat != backends.InvalidArgument {
			t.Errorf("ValidateRev(%q): category %q, want invalid_argument", rev, cat)
		}
	}
}

func TestValidatePath(t *testing.T) {
	tests := []struct {
		in        string
		allowRoot bool
		want      string
		cat       backends.Category
	}{
		{"a", false, "a", ""},
		{"a/b/c.txt", false, "a/b/c.txt", ""},
		{"dir/", false, "dir", ""},
		{"./a//b/./c", false, "a/b/c", ""},
		{"name with spaces.txt", false, "name with spaces.txt", ""},
		{"caf\u00e9/\u6587\u4ef6", false, "caf\u00e9/\u6587\u4ef6", ""},
		{".gitignore", false, ".gitignore", ""},
		{"x.git", false, "x.git", ""},
		{"...", false, "...", ""},
		{strings.Repeat("p", MaxPathLength), false, strings.Repeat("p", MaxPathLength), ""},
		{"", true, ".", ""},
		{".", true, ".", ""},
		{"./", true, ".", ""},

		{"", false, "", backends.InvalidArgument},
		{".", false, "", backends.InvalidArgument},
		{"/etc/passwd", false, "", backends.InvalidArgument},
		{"/", true, "", backends.InvalidArgument},
		{"..", true, "", backends.InvalidArgument},
		{"../x", false, "", backends.InvalidArgument},
		{"a/../../x", false, "", backends.InvalidArgument},
		{"a/..", true, "", backends.InvalidArgument},
		{"a\\b", false, "", backends.InvalidArgument},
		{"..\\x", false, "", backends.InvalidArgument},
		{"a\x00b", false, "", backends.InvalidArgument},
		{"a\nb", false, "", backends.InvalidArgument},
		{"a\rb", false, "", backends.InvalidArgument},
		{"a\x1b[31m", false, "", backends.InvalidArgument},
		{"bad\xffutf8", false, "", backends.InvalidArgument},
		{strings.Repeat("p", MaxPathLength+1), false, "", backends.InvalidArgument},

		{".git", false, "", backends.Forbidden},
		{".git", true, "", backends.Forbidden},
		{".git/", false, "", backends.Forbidden},
		{".GIT/config", false, "", backends.Forbidden},
		{".Git/hooks/pre-commit", false, "", backends.Forbidden},
		{"sub/.git/hooks", false, "", backends.Forbidden},
		{"sub/.git", false, "", backends.Forbidden},
		{".git.", false, "", backends.Forbidden},
		{".git ", false, "", backends.Forbidden},
		{".git. .", false, "", backends.Forbidden},
		{"a/.GiT./config", false, "", backends.Forbidden},
	}
	for _, tt := range tests {
		got, err := ValidatePath(tt.in, tt.allowRoot)
		if cat := backends.CategoryOf(err); cat != tt.cat || got != tt.want {
			t.Errorf("ValidatePath(%q, %v) = %q, %v (category %q); want %q, category %q", tt.in, tt.allowRoot, got, err, cat, tt.want, tt.cat)
		}
	}
}

func TestValidatePaths(t *testing.T) {
	atCap := make([]string, MaxPaths)
	for i := range atCap {
		atCap[i] = fmt.Sprintf("f%d/", i)
	}
	got, err := ValidatePaths(atCap)
	if err != nil || len(got) != MaxPaths || got[0] != "f0" || got[MaxPaths-1] != fmt.Sprintf("f%d", MaxPaths-1) {
		t.Fatalf("ValidatePaths(%d paths) = %d paths, %v; want all accepted and cleaned", MaxPaths, len(got), err)
	}
	if got, err := ValidatePaths(append(atCap, "one-more")); backends.CategoryOf(err) != backends.InvalidArgument || got != nil {
		t.Errorf("ValidatePaths(%d paths) = %v, %v; want nil, invalid_argument", MaxPaths+1, got, err)
	}
	if got, err := ValidatePaths([]string{"ok", ".git/config"}); backends.CategoryOf(err) != backends.Forbidden || got != nil {
		t.Errorf("one forbidden path among valid ones: got %v, %v; want nil, forbidden", got, err)
	}
	if got, err := ValidatePaths([]string{"ok", ""}); backends.CategoryOf(err) != backends.InvalidArgument || got != nil {
		t.Errorf("empty path in a list (root not allowed): got %v, %v; want nil, invalid_argument", got, err)
	}
	if got, err := ValidatePaths(nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ValidatePaths(nil) = %#v, %v; want empty non-nil slice", got, err)
	}
}

func TestValidateWorkspace(t *testing.T) {
	for _, name := range []string{"ws", "a", "W-1_x.y", strings.Repeat("w", 64)} {
		if err := ValidateWorkspace(name); err != nil {
			t.Errorf("ValidateWorkspace(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a..b", ".ws", "-ws", "_ws", "a/b", "a\\b", "a b", "ws\n", "w\u0455", strings.Repeat("w", 65)} {
		if cat := backends.CategoryOf(ValidateWorkspace(name)); cat != backends.InvalidArgument {
			t.Errorf("ValidateWorkspace(%q): category %q, want invalid_argument", name, cat)
		}
	}
}

func TestValidateMessage(t *testing.T) {
	tests := []struct {
		name, msg string
		cat       backends.Category
		bug       string // set when the case documents a known bug (see report)
	}{
		{"subject only", "Fix the thing", "", ""},
		{"tabs newlines heading", "# Heading\n\n\tindented body\n- item\n", "", ""},
		{"unicode", "Caf\u00e9 \u2713 \u6587\u5b57 \U0001F600", "", ""},
		{"exactly max", strings.Repeat("m", MaxMessageLength), "", ""},
		{"empty", "", backends.InvalidArgument, ""},
		{"whitespace only", " \n\t \n", backends.InvalidArgument, ""},
		{"NUL", "subject\x00body", backends.InvalidArgument, ""},
		{"ANSI ESC", "subject \x1b[31mred\x1b[0m", backends.InvalidArgument, ""},
		{"CR", "subject\r\nbody", backends.InvalidArgument, ""},
		{"backspace", "subject\bX", backends.InvalidArgument, ""},
		{"DEL", "subject\x7f", backends.InvalidArgument, ""},
		{"RLO U+202E", "subject \u202eevil", backends.InvalidArgument, ""},
		{"LRE U+202A", "subject \u202aevil", backends.InvalidArgument, ""},
		{"LRI U+2066", "subject \u2066evil\u2069", backends.InvalidArgument, ""},
		{"PDI U+2069", "subject \u2069", backends.InvalidArgument, ""},
		{"LRM U+200E", "subject \u200e", backends.InvalidArgument, ""},
		{"RLM U+200F", "subject \u200f", backends.InvalidArgument, ""},
		{"invalid UTF-8", "subject \xff\xfe", backends.InvalidArgument, ""},
		{"over max", strings.Repeat("m", MaxMessageLength+1), backends.ResourceExhausted, ""},
		{"C1 CSI U+009B", "subject \u009b31mred", backends.InvalidArgument, ""},
		{"ALM U+061C", "subject \u061cevil", backends.InvalidArgument, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("known bug, reported: " + tt.bug)
			}
			if cat := backends.CategoryOf(ValidateMessage(tt.msg)); cat != tt.cat {
				t.Errorf("ValidateMessage(%.40q): category %q, want %q", tt.msg, cat, tt.cat)
			}
		})
	}
}

func TestValidateIdentity(t *testing.T) {
	if err := ValidateIdentity("Gitgate Bot", "bot@gitgate.example"); err != nil {
		t.Errorf("valid identity refused: %v", err)
	}
	bad := [][2]string{
		{"", "bot@x"}, {"Bot", ""}, {"Bot <evil@x>", "bot@x"}, {"Bot", "bot@x>"}, {"Bot", "<bot@x"},
		{"Bot\nSigned-off-by: x", "bot@x"}, {"Bot", "bot@x\r"}, {"Bot\x00", "bot@x"},
	}
	for _, id := range bad {
		if cat := backends.CategoryOf(ValidateIdentity(id[0], id[1])); cat != backends.InvalidArgument {
			t.Errorf("ValidateIdentity(%q, %q): category %q, want invalid_argument", id[0], id[1], cat)
		}
	}
}

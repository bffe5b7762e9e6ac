package configs

import (
	"strings"
	"testing"
)

// TestRelayConfig: no relay by default; the gateway's and the service's
// endpoints with their URLs as the sandboxes reach them; each mistake
// refused naming its key.
func TestRelayConfig(t *testing.T) {
	c, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Relay.Gateway(); g.Listen != "" || c.Relay.Service().Listen != "" {
		t.Fatalf("a relay by default: %+v", c.Relay)
	}
	c, err = Load(writeConfig(t, `relay: {listen: "127.0.0.1:7422", public_url: "https://relay.example.com/", service_listen: "127.0.0.1:7432"}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if g, s := c.Relay.Gateway(), c.Relay.Service(); g.URL("127.0.0.1:7422") != "https://relay.example.com" || s.URL("127.0.0.1:7432") != "http://127.0.0.1:7432" {
		t.Errorf("relay URLs %q %q", g.URL("127.0.0.1:7422"), s.URL("127.0.0.1:7432"))
	}
	for _, tc := range []struct{ yaml, want string }{
		{`relay: {public_url: "https://relay.example.com"}`, "relay.public_url is set but relay.listen is not"},
		{`relay: {listen: "7422"}`, "relay.listen: \"7422\" is not host:port"},
		{`relay: {listen: ":7422", public_url: "https://user:pw@relay.example.com"}`, "relay.public_url"},
		{`relay: {listen: ":7422", public_url: "ftp://relay.example.com"}`, "relay.public_url"},
		{`relay: {service_listen: "x"}`, "relay.service_listen"},
		{`relay: {capability_ttl: -1s}`, "relay.capability_ttl"},
		{`relay: {egress_usd_per_gib: -0.1}`, "relay.egress_usd_per_gib"},
	} {
		_, err := Load(writeConfig(t, tc.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.yaml, err, tc.want)
		}
	}
}

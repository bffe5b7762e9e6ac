# gitgate — run `make help` for the targets.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.DEFAULT_GOAL := help
.PHONY: help run build test lint fmt fleet deploy-check deploy-rules bench bench-gateway bench-approach2 bench-e2b bench-memory bench-scale bench-relay bench-fork bench-canary load-aa proto check-generated protoc services chromium haproxy promtool pushgateway rules-test dashboard dashboard-lint

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: build ## Start the gateway with a demo remote on loopback (prints the MCP URL and a token); ARGS="--backend approach2"
	@bin/gitgate dev $(ARGS)

build: ## Build bin/gitgate
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/gitgate ./cmd/gitgate

# The longest test packages, named first so that go test starts them first:
# on two cores the run then ends with the short packages instead of waiting
# for a long one started last.
TEST_FIRST := ./cmd/gitgate ./backends/approach2 ./backends/sandbox/e2b ./backends/approach1

# build comes first: the end-to-end tests start the same binary (built
# again by them, from the warm cache), and the -race tests share no
# compiled code with it.
# -timeout catches a hung test, not a slow machine: cmd/gitgate takes about
# 6 minutes on an idle two-core machine and more than twice that when the
# machine is busy.
# GITGATE_TEST_BINARY: the end-to-end tests start bin/gitgate, built just
# before, instead of linking their own (up to half a minute on a busy
# machine). -parallel 4: most of cmd/gitgate's parallel tests wait on child
# processes, failovers, drain delays and HAProxy checks rather than use CPU;
# with go test's default (GOMAXPROCS, 2 here) they queued behind each other.
# -vet=off: lint, before, ran go vet ./... with every analyzer; go test's
# own vet pass (a subset, keyed apart from lint's so never a cache hit)
# would repeat it on every package before its tests start.
test: lint check-generated services chromium haproxy pushgateway rules-test dashboard-lint build deploy-check ## Lint, check generated code, start PostgreSQL and Redis if down, test the alert rules, build, run every test (with -race, but for the few NORACE_TESTS)
	GITGATE_TEST_BINARY=$(CURDIR)/bin/gitgate $(GO) test -race -vet=off -count=1 -timeout 30m -parallel 4 -skip '$(NORACE_TESTS)|$(FLEET_TESTS)' $(TEST_FIRST) $$($(GO) list ./... | grep -v -x -e '$(NORACE_WHOLE)')
	GITGATE_TEST_BINARY=$(CURDIR)/bin/gitgate $(GO) test -vet=off -count=1 -timeout 30m -run '$(NORACE_TESTS)' $(NORACE_PKGS)
	$(GO) test -vet=off -count=1 -timeout 30m ./internal/ledgergen

# Tests that push megabytes through one call after another, with nothing
# of their own running concurrently: under -race their time is the race
# detector's bookkeeping of large copies (CPU under -race against without:
# TestOneFileSizeLimitOnBothBackends 80 s against 15 s, TestToolRefusals'
# 11 MiB write 24 s against 3 s, SizeLimits on Approach 1 36 s against
# 2 s; TestBadInputAnswersAreTheSame, whose cases the BadInput subtests
# still run under -race on every backend, 13 s against 3 s). make test
# runs them without -race, in a second go test over the packages that hold
# them (NORACE_PKGS: keep it in step with the pattern); the first skips
# them with the same pattern, so that every test runs exactly once. A
# plain go test -race ./... still runs them. With them, the canary's
# judge and report simulations (weeks of simulated calls judged and
# reported in one goroutine: the report code starts none), each several
# times slower under -race; and the in-process CLI tests that judge or
# generate tens of thousands of ledger entries in one goroutine
# (TestCanaryCommands 30 s against 2 s, TestDevLedger 10 s against 0.8 s).
NORACE_TESTS := ^TestConformance(OnE2B|WithRedisAndPostgres|ThroughTheRelay)?$$/^SizeLimits$$|^TestOneFileSizeLimitOnBothBackends$$|^TestToolRefusals$$|^TestBadInputAnswersAreTheSame$$|^TestJudgeAAFalseAlarms$$|^TestBuildReportSmoke$$|^TestReportShowsADrillOnce$$|^TestDrillCallsAreNotJudged$$|^TestReport(JSONAndExitCode|OutDir|StagesFromFlags)$$|^TestCanaryCommands$$|^TestDevLedger$$
NORACE_PKGS := ./cmd/gitgate ./backends/approach1 ./backends/approach2 ./backends/sandbox/e2b ./canary
# TestFleet (internal/fleet: three gateways, two services, HAProxy, Redis
# Sentinel and agents as processes) is make fleet's: on two cores it took
# 178 s of make test's CPU, which is over its ten minutes. Each part it
# exercises has its own tests here (sessions across replicas, several
# services, graceful stops behind HAProxy, Sentinel failovers, the other
# internal/fleet tests); make fleet runs the whole at any scale.
FLEET_TESTS := ^TestFleet$$
# internal/ledgergen starts no goroutine: its seeded simulations gain
# nothing from -race and take several times as long under it.
NORACE_WHOLE := github.com/gitgate/gitgate/internal/ledgergen

# golangci-lint is pinned in its own module, so that its dependencies stay
# out of gitgate's go.mod; its linters and exclusions are in .golangci.yml.
GOLANGCI_LINT := $(GO) tool -modfile=internal/tools/golangci-lint/go.mod golangci-lint

lint: ## gofmt, go vet, golangci-lint (with staticcheck), go.mod tidiness and the project's own rules
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# golangci-lint runs staticcheck (the same v0.8.2 as `go tool staticcheck`, every check
	@# but the editor quick fixes), so it is not run a second time here.
	$(GOLANGCI_LINT) run ./...
	$(GO) mod tidy -diff
	@# Backends never import the gateway; library packages never read the environment or use the default
	@# mux (internal/ holds the test support, which may read its test settings from the environment).
	@if grep -rln --include='*.go' '"github.com/gitgate/gitgate/gateway' backends/; then echo "backends/ must not import gateway/"; exit 1; fi
	@if grep -rn --include='*.go' -e 'os\.Getenv(' -e 'http\.DefaultServeMux' -e 'http\.HandleFunc(' backends/ gateway/ configs/ | grep -v -e '_test.go'; then \
		echo "os.Getenv / http.DefaultServeMux outside cmd/"; exit 1; fi
	@# Configuration is read (viper) by configs/ alone; every other package takes its typed part.
	@if grep -rln --include='*.go' '"github.com/spf13/viper"' backends/ gateway/ flags/ canary/ internal/ cmd/ | grep -v -e '_test.go'; then \
		echo "viper outside configs/"; exit 1; fi

fmt: ## Format the code
	gofmt -w $$(git ls-files '*.go')

# Performance (issue 17): each bench-* target pipes its benchmarks through
# benchcheck, which prints one line per target (met / MISSED / info, the
# figure against its target) and appends the raw output to $(BENCHLOG).
BENCHLOG   ?= /tmp/gitgate-bench.log
BENCHCHECK  = $(GO) run ./internal/benchtarget/benchcheck -raw $(BENCHLOG)
bench-gateway bench-approach2 bench-e2b bench-memory bench-scale bench-relay: SHELL := /bin/bash

bench: bench-gateway bench-approach2 bench-e2b bench-memory bench-scale bench-relay ## Every performance target, one line each (met / MISSED / info); raw output in $(BENCHLOG)

bench-gateway: ## Status through the gateway against direct git: added median latency and 16-agent throughput
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkStatus(Latency|Throughput16)$$' -benchtime 4000x -benchmem ./cmd/gitgate 2>&1 | $(BENCHCHECK)

bench-approach2: services ## Approach 2 (the service) against Approach 1 (beside it, and standalone): status, write_file, commit throughput at 32 agents; CALLS=1600
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkThroughput32$$' -benchtime $(or $(CALLS),1600)x ./backends/approach2/ 2>&1 | $(BENCHCHECK)

bench-e2b: ## Both backends on the E2B stand-in (30 ms round trip, 150 ms sandbox start): round trips per operation, first clone cold / warm
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkE2B(RoundTrips|FirstOperation)$$' -benchtime 1x -timeout 30m ./backends/sandbox/e2b/ 2>&1 | $(BENCHCHECK)

bench-relay: ## Clone and push of a 5,000-file repository through the git relay against direct (throughput ratios)
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkRelayThroughput$$' -benchtime 10x -timeout 30m ./backends/relay/ 2>&1 | $(BENCHCHECK)

bench-memory: build services ## Resident memory of bin/gitgate as its own processes: gateway and Approach 2 service, idle and with 100 agents
	set -o pipefail; GITGATE_TEST_BINARY=$(CURDIR)/bin/gitgate $(GO) test -run '^$$' -bench '^BenchmarkMemory$$' -benchtime 1x -timeout 30m ./cmd/gitgate 2>&1 | $(BENCHCHECK)

bench-scale: build services ## Throughput and P95 at 1, 10, 50, 100 and 200 agents through the gateway, Approach 1 and Approach 2
	set -o pipefail; GITGATE_TEST_BINARY=$(CURDIR)/bin/gitgate $(GO) test -run '^$$' -bench '^BenchmarkScaleCurve$$' -benchtime 1x -timeout 40m ./cmd/gitgate 2>&1 | $(BENCHCHECK)

bench-fork: ## Fork against a fresh clone (5,000 files, with and without 300 commits of history): time, disk added, object bytes; ROUNDS=3
	$(GO) test -run '^$$' -bench '^BenchmarkForkVsClone$$' -benchtime $(or $(ROUNDS),3)x -count 1 ./backends/approach1/

bench-canary: services ## Canary routing: added median per call, and the P95 cost of shadowing 10 % (Redis, PostgreSQL)
	$(GO) test -run '^$$' -bench 'BenchmarkRoutingOverhead' -benchmem ./cmd/gitgate
	$(GO) test -run '^$$' -bench 'BenchmarkShadow(OverheadP95|OverheadP95Writes|NoiseFloorP95|OverheadP95SeparateCores)$$' -benchtime 4800x ./cmd/gitgate 2>/dev/null | grep -v '^{"level"'

# A simulated ledger (gitgate dev ledger) through gitgate report: 4 weeks of 10
# agents with every operation in canary and Approach 2 failing 20 % of pushes.
# The report exits 3 on its rollback verdict, which is what this scenario shows.
demo-report: build ## The report on a simulated 4-week ledger where Approach 2 fails 20 % of pushes
	@dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	bin/gitgate dev ledger --scenario push-failures --weeks 4 --agents 10 --seed 1 --out "$$dir/ledger.jsonl" || exit 1; \
	bin/gitgate report --ledger "$$dir/ledger.jsonl" --flags "$$dir/absent.flagd.json"; rc=$$?; \
	if [ $$rc -eq 3 ]; then echo "(exit 3: push's verdict is rollback, as the scenario intends)"; rc=0; fi; exit $$rc

# Without -race: the figure is the gateway's under load, not the race
# detector's (make test runs the same test, smaller, with -race).
load-aa: services ## A/A canary under load: 100 agents at agent pace for 180 s, every op at 50 %, shadow 10 %, 4 CPU burners
	GITGATE_TEST_LOAD_AGENTS=100 GITGATE_TEST_LOAD_SECONDS=180 GITGATE_TEST_LOAD_BUSY=4 \
		$(GO) test -count=1 -timeout 30m -run '^TestLoadAAAtAgentPace$$' -v ./cmd/gitgate

# Issue 15's fleet on loopback at full scale, without -race (the figures are
# the fleet's, not the race detector's; `go test ./internal/fleet` runs it with
# 12 agents, make test skips it: FLEET_TESTS): 3 gateways behind HAProxy, 2 services, Redis Sentinel, PostgreSQL,
# 100 agents; rolling restarts, a killed service, a Redis failover, flag
# propagation. FLEET_OUT: where the figures (fleet.json) and the processes'
# logs go; FLEET_AGENTS, FLEET_SECONDS: the scale (agents, seconds per phase).
FLEET_OUT ?= bin/fleet
FLEET_AGENTS ?= 100
FLEET_SECONDS ?= 20
fleet: services haproxy ## The fleet demonstration at 100 agents (TestFleet): prints throughput, P50/P95 per tool, memory, propagation
	GITGATE_FLEET_AGENTS=$(FLEET_AGENTS) GITGATE_FLEET_SECONDS=$(FLEET_SECONDS) GITGATE_FLEET_OUT=$(abspath $(FLEET_OUT)) \
		$(GO) test -count=1 -timeout 30m -run '^TestFleet$$' -v ./internal/fleet
	@echo "figures: $(FLEET_OUT)/fleet.json"

protoc: # protoc from Debian's protobuf-compiler, installed when missing
	@command -v protoc >/dev/null 2>&1 || { echo "installing protobuf-compiler (protoc)"; \
		apt-get update -qq >/dev/null && apt-get install -y -qq protobuf-compiler >/dev/null; } \
		|| { echo "protoc is missing: install Debian's protobuf-compiler"; exit 1; }

chromium: # Debian's chromium (the HTML report's browser test, canary and internal/browsertest), installed when missing
	@test -x /usr/bin/chromium || { echo "installing chromium"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| { echo "chromium is missing: install Debian's chromium"; exit 1; }

haproxy: # Debian's haproxy (the load balancer of the fleet tests, internal/fleet and cmd/gitgate's graceful restarts), installed when missing
	@test -x /usr/sbin/haproxy || { echo "installing haproxy"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; } \
		|| { echo "haproxy is missing: install Debian's haproxy"; exit 1; }

promtool: # promtool from Debian's prometheus package (make rules-test), installed when missing
	@command -v promtool >/dev/null 2>&1 || { echo "installing prometheus (promtool)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
		|| { echo "promtool is missing: install Debian's prometheus"; exit 1; }

pushgateway: # Debian's prometheus-pushgateway (the drill metrics' push test, canary/drill), installed when missing
	@test -x /usr/bin/prometheus-pushgateway || { echo "installing prometheus-pushgateway"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-pushgateway >/dev/null; } \
		|| { echo "prometheus-pushgateway is missing: install Debian's prometheus-pushgateway"; exit 1; }

rules-test: promtool ## Check the Prometheus alert rules in deploy/prometheus and run their promtool unit tests
	promtool check rules deploy/prometheus/*.rules.yml deploy/prometheus/*.alerts.yml
	promtool test rules deploy/prometheus/*.test.yml

proto: protoc ## Regenerate the Approach 2 protocol code from its .proto
	@mkdir -p bin
	$(GO) build -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o bin/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	$(GO) generate ./backends/approach2/approach2pb

check-generated: proto dashboard ## Fail when the committed generated code differs from the .proto, or the dashboard from its generator
	@git diff --exit-code --stat -- backends/approach2/approach2pb || \
		{ echo "generated code is stale: run make proto and commit"; exit 1; }
	@git diff --exit-code --stat -- deploy/grafana/gitgate.json || \
		{ echo "the dashboard is stale: run make dashboard and commit"; exit 1; }

# The dashboard's generator and Grafana's dashboard-linter are pinned in
# their own module, so that the SDK and the linter's dependencies stay out
# of gitgate's go.mod.
GRAFANA_TOOLS := internal/tools/grafana

dashboard: ## Generate the Grafana dashboard deploy/grafana/gitgate.json
	cd $(GRAFANA_TOOLS) && $(GO) run ./dashgen -out $(CURDIR)/deploy/grafana/gitgate.json

dashboard-lint: ## Lint the Grafana dashboard with Grafana's dashboard-linter (strict: warnings fail too)
	$(GO) tool -modfile=$(GRAFANA_TOOLS)/go.mod dashboard-linter lint --strict deploy/grafana/gitgate.json

# The deployment files' checker (kustomize's Go API, the Kubernetes and
# Prometheus operator API types) is its own module, so that they stay out
# of gitgate's go.mod. It asks bin/gitgate whether the manifests' and the
# units' commands, flags, keys and GITGATE_* variables exist; its tests
# break copies of deploy/ to show that each check fails.
KUBE_TOOLS := internal/tools/kube

deploy-rules: ## Generate deploy/kubernetes/base/prometheusrule.yaml from deploy/prometheus's rule files
	cd $(KUBE_TOOLS) && $(GO) run ./cmd/deploycheck -root $(CURDIR) -write-rules

deploy-check: build ## Build the kustomize overlays, decode every manifest strictly, check them against bin/gitgate and deploy/prometheus; systemd-analyze verify the units
	@command -v systemd-analyze >/dev/null 2>&1 || { echo "installing systemd (systemd-analyze)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null; }
	@# TestDeployTree is the check (go run ./cmd/deploycheck prints the same); the
	@# other tests break copies of deploy/ to show that each check can fail.
	cd $(KUBE_TOOLS) && DEPLOYCHECK_GITGATE=$(CURDIR)/bin/gitgate $(GO) test -count=1 ./...

services: ## Start the local PostgreSQL and Redis the tests use, when they are down
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "starting Redis"; \
		redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /tmp; }
	@pg_isready -h 127.0.0.1 -p 5432 -q || { echo "starting PostgreSQL"; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; }
	@for i in $$(seq 1 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -q && exit 0; sleep 0.2; done; \
		echo "PostgreSQL or Redis did not come up"; exit 1

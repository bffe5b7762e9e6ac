package main

import (
	"context"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

const serviceToken = "gga_service_token_e2e_0123456789abcdef"

func freeAddr(t testing.TB) string {
	ln := listenLoopback(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startBackend runs `gitgate backend` as a child process with the world's
// configuration and waits until its health service says SERVING.
func (w *world) startBackend(t testing.TB) (addr string, proc *os.Process) {
	t.Helper()
	addr = freeAddr(t)
	return addr, w.startBackendOn(t, addr, freeAddr(t))
}

// startBackendOn is startBackend on the given addresses (to restart the
// service where the gateway expects it).
func (w *world) startBackendOn(t testing.TB, addr, adminAddr string) *os.Process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gitgate.yaml")
	ownDir := ", sandbox_dir: \"" + t.TempDir() + "\""
	if w.sharedSandboxes != "" {
		ownDir = "" // the gateway's, shared
	}
	drain := ""
	if w.serviceDrainDelay != "" {
		drain = ", drain_delay: " + w.serviceDrainDelay
	}
	yaml := w.configYAML(t.TempDir()) + "approach2: {listen: \"" + addr + "\", admin: \"" + adminAddr +
		"\", token_env: E2E_SERVICE_TOKEN" + ownDir + drain + "}\n" +
		"postgres: {dsn_env: E2E_PG_DSN}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gitgateBinary(t), "backend", "--config", path)
	if w.pgDSN == "" {
		w.pgDSN = backendtest.PostgresDSN(t)
	}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "E2E_GIT_TOKEN=" + gitToken, "E2E_GIT_READ_TOKEN=" + gitReadToken,
		"E2E_SERVICE_TOKEN=" + serviceToken, "E2E_PG_DSN=" + w.pgDSN, "E2E_E2B_KEY=" + e2bKey}
	cmd.Stderr = w.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	defer func() {
		if t.Failed() { // waitServing gave up: what did the service say?
			log := w.logs.String()
			t.Logf("the service's log (last 8 KiB):\n%s", log[max(0, len(log)-8192):])
		}
	}()
	waitServing(t, addr)
	w.backendWait = cmd.Wait
	return cmd.Process
}

func healthOf(ctx context.Context, addr string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return res.GetStatus(), err
}

func waitServing(t testing.TB, addr string) {
	t.Helper()
	testkit.EventuallyNil(t, "the service at "+addr+" reports SERVING", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, err := healthOf(ctx, addr)
		if err == nil && st != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("health %s", st)
		}
		return err
	})
}

// TestAgentFlowThroughApproach2: the gateway sends every operation to the
// service in another process; the agent's flow works the same and every
// result says approach2.
func TestAgentFlowThroughApproach2(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	addr, proc := w.startBackend(t)
	w.cfg.Redis.Addr, w.cfg.Redis.Prefix = "127.0.0.1:6379", w.redisPrefix // the gateway shares the service's locks
	w.cfg.Backend.Default = "approach2"
	w.cfg.Approach2.Target, w.cfg.Approach2.Token, w.cfg.Approach2.Insecure = addr, serviceToken, true
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	agentFlow(t, w, c)
	if got := w.ok(t, c, "status", map[string]any{"workspace": "work"})["backend"]; got != "approach2" {
		t.Fatalf("status served by %v", got)
	}
	listServices(t, addr)
	// SIGTERM: the service reports NOT_SERVING, drains and exits cleanly.
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.backendWait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("service exit after SIGTERM: %v", err)
		}
	case <-time.After(testkit.Patience):
		t.Fatal("service did not exit after SIGTERM")
	}
	w.fail(t, c, "status", map[string]any{"workspace": "work"}, "unavailable")
}

// listServices discovers the service through server reflection, as grpcurl
// does.
func listServices(t *testing.T, addr string) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "gitgate.approach2.v1.GitService") || !slices.Contains(names, "grpc.health.v1.Health") {
		t.Fatalf("reflection lists %s", strings.Join(names, ", "))
	}
}

// TestHealthFollowsDependencies: the service reports SERVING only while
// Redis (here behind a proxy the test cuts), PostgreSQL and the pool are
// ready.
func TestHealthFollowsDependencies(t *testing.T) {
	w := newWorld(t)
	w.redisPrefix = backendtest.RedisPrefix(t, backendtest.Redis(t))
	proxy, cut := backendtest.Proxy(t, "127.0.0.1:6379")
	w.redisAddr = proxy
	addr, _ := w.startBackend(t)
	cut()
	testkit.Eventually(t, "the service reports NOT_SERVING with Redis gone", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, err := healthOf(ctx, addr)
		return err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING
	})
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gitgate/gitgate/configs"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// devPostgresDSN is where `gitgate dev` keeps the Approach 2 journal unless
// GITGATE_POSTGRES_DSN says otherwise: the local server's postgres
// database, schema gitgate_dev.
const devPostgresDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// devServiceInfo is the in-process Approach 2 service of `gitgate dev`.
type devServiceInfo struct {
	addr     string        // its gRPC address; empty when it did not start
	adminURL string        // its admin listener (/metrics, /healthz, /readyz)
	token    string        // the bearer token its GitService wants
	why      string        // why it did not start
	stopped  chan struct{} // closed once it has stopped (after its context ended)
}

// devService starts the Approach 2 service in process when the local Redis
// and PostgreSQL answer, and points cfg (the gateway's configuration) at it
// with shared locks, bindings and sandboxes. It returns where the service
// is, or why it did not start.
func devService(ctx context.Context, cfg *configs.Config, logOut io.Writer) devServiceInfo {
	failed := func(why string) devServiceInfo { return devServiceInfo{why: why} }
	dsn, err := devJournalDSN(ctx)
	if err != nil {
		return failed("PostgreSQL does not answer: " + err.Error())
	}
	if err := pingRedis(ctx, "127.0.0.1:6379"); err != nil {
		return failed("Redis does not answer: " + err.Error())
	}
	token, err := newToken("gga_svc_")
	if err != nil {
		return failed(err.Error())
	}
	prefix, _ := newToken("")
	cfg.Redis = configs.RedisConfig{Addr: "127.0.0.1:6379", Prefix: "gitgate-dev:" + prefix[:12] + ":", LockTTL: 10 * time.Second}
	cfg.Sandbox.Local.Shared = true
	cfg.Approach2.DrainDelay = 0 // no balancer in front of the in-process service: a stop stops at once
	cfg.Approach2.Token, cfg.Approach2.TokenSecret, cfg.Approach2.Insecure = token, nil, true
	cfg.Postgres.DSN, cfg.Postgres.DSNSecret = dsn, nil // the gateway's Approach 1 shares the service's journal
	svcCfg := *cfg
	svc, err := startServiceInProcess(ctx, &svcCfg, logOut)
	if err != nil {
		return failed(err.Error())
	}
	svc.token = token
	cfg.Approach2.Target = svc.addr
	return svc
}

// devJournalDSN returns the DSN of the dev journal, creating its schema.
func devJournalDSN(ctx context.Context) (string, error) {
	if dsn := os.Getenv("GITGATE_POSTGRES_DSN"); dsn != "" {
		return dsn, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, devPostgresDSN)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS gitgate_dev"); err != nil {
		return "", err
	}
	return devPostgresDSN + "&search_path=gitgate_dev", nil
}

func pingRedis(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	return c.Ping(ctx).Err()
}

// startServiceInProcess runs the Approach 2 service on loopback ports of
// its own until ctx ends and says where it listens.
func startServiceInProcess(ctx context.Context, cfg *configs.Config, logOut io.Writer) (devServiceInfo, error) {
	a, err := newServiceRoot(ctx, cfg, logOut)
	if err != nil {
		return devServiceInfo{}, fmt.Errorf("approach2 service: %w", err)
	}
	g, hs, err := a.grpcServer()
	if err != nil {
		a.close(ctx)
		return devServiceInfo{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.close(ctx)
		return devServiceInfo{}, err
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		a.close(ctx)
		return devServiceInfo{}, err
	}
	a.startReaper(ctx)
	logStopped := a.logShutdown(ctx, "approach2 service", cfg.Approach2.DrainTimeout)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = a.serveGRPC(ctx, g, hs, ln, adminLn)
		a.close(context.WithoutCancel(ctx))
		logStopped()
	}()
	return devServiceInfo{addr: ln.Addr().String(), adminURL: "http://" + adminLn.Addr().String(), stopped: stopped}, nil
}

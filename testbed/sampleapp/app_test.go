package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func testConfig(t *testing.T, env map[string]string) Config {
	t.Helper()
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

func quietLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestOutageWindowIsExactToTheNanosecond(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 123)}
	app := NewApp(testConfig(t, nil), "test", clk.Now, quietLogger())
	h := app.Handler()
	clk.Set(clk.Now().Add(time.Minute)) // well after startup

	rec := get(t, h, http.MethodPost, "/admin/outage?ms=200")
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /admin/outage: %d %s", rec.Code, rec.Body)
	}
	var o Outage
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	if o.StartNs != start.UnixNano() || o.EndNs-o.StartNs != 200_000_000 || o.DurationMs != 200 {
		t.Fatalf("outage record %+v: want start %d and exactly 200 ms", o, start.UnixNano())
	}

	cases := []struct {
		at   time.Duration
		want int
	}{
		{-time.Nanosecond, 200}, // before the call: not in the window
		{0, 503},
		{time.Nanosecond, 503},
		{100 * time.Millisecond, 503},
		{200*time.Millisecond - time.Nanosecond, 503},
		{200 * time.Millisecond, 200}, // the end is exclusive
		{time.Second, 200},
	}
	for _, c := range cases {
		clk.Set(start.Add(c.at))
		for _, path := range []string{"/", "/work?ms=0"} {
			rec := get(t, h, http.MethodGet, path)
			if rec.Code != c.want {
				t.Errorf("GET %s at start%+v: status %d, want %d", path, c.at, rec.Code, c.want)
			}
			if got := rec.Header().Get("X-Handled-At"); got != strconv.FormatInt(start.Add(c.at).UnixNano(), 10) {
				t.Errorf("X-Handled-At %s", got)
			}
		}
		// Probes are not part of the outage.
		if rec := get(t, h, http.MethodGet, "/readyz"); rec.Code != 200 {
			t.Errorf("readyz during outage: %d", rec.Code)
		}
	}

	rec = get(t, h, http.MethodGet, "/admin/outages")
	var list struct {
		Outages []Outage `json:"outages"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.Outages) != 1 || list.Outages[0].StartNs != o.StartNs {
		t.Fatalf("GET /admin/outages: %s (%v)", rec.Body, err)
	}
}

func TestOutageRejectsBadDurations(t *testing.T) {
	h := NewApp(testConfig(t, nil), "test", nil, quietLogger()).Handler()
	for _, q := range []string{"", "ms=0", "ms=-5", "ms=abc", "ms=600001"} {
		if rec := get(t, h, http.MethodPost, "/admin/outage?"+q); rec.Code != http.StatusBadRequest {
			t.Errorf("POST /admin/outage?%s: %d, want 400", q, rec.Code)
		}
	}
	if rec := get(t, h, http.MethodGet, "/admin/outage?ms=5"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /admin/outage: %d, want 405", rec.Code)
	}
}

// Against the real clock and a real server: every answer stamped inside the
// recorded window is a 503 and every answer outside it is a 200.
func TestOutageGroundTruthOverHTTP(t *testing.T) {
	app := NewApp(testConfig(t, nil), "test", nil, quietLogger())
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/admin/outage?ms=50", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var o Outage
	_ = json.NewDecoder(resp.Body).Decode(&o)
	resp.Body.Close()

	var failed, ok int
	deadline := time.Now().Add(120 * time.Millisecond)
	for time.Now().Before(deadline) {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		at, _ := strconv.ParseInt(resp.Header.Get("X-Handled-At"), 10, 64)
		inside := at >= o.StartNs && at < o.EndNs
		switch {
		case inside && resp.StatusCode == 503:
			failed++
		case !inside && resp.StatusCode == 200:
			ok++
		default:
			t.Fatalf("status %d at %d, window [%d, %d)", resp.StatusCode, at, o.StartNs, o.EndNs)
		}
	}
	if failed == 0 || ok == 0 {
		t.Fatalf("saw %d failures and %d successes; want both", failed, ok)
	}
}

func TestOverlappingOutages(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	app := NewApp(testConfig(t, nil), "test", clk.Now, quietLogger())
	t0 := clk.Now()
	app.StartOutage(1000)
	clk.Set(t0.Add(100 * time.Millisecond))
	app.StartOutage(10) // a short one inside the long one
	clk.Set(t0.Add(500 * time.Millisecond))
	if !app.InOutage(clk.Now()) {
		t.Fatal("the long outage must still hold after the short one ended")
	}
	if app.InOutage(t0.Add(time.Second)) {
		t.Fatal("after both ended")
	}
}

func TestStartupDelay(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	app := NewApp(testConfig(t, map[string]string{"STARTUP_DELAY": "3s"}), "test", clk.Now, quietLogger())
	h := app.Handler()
	t0 := clk.Now()
	for _, p := range []string{"/startupz", "/readyz", "/"} {
		if rec := get(t, h, http.MethodGet, p); rec.Code != 503 {
			t.Errorf("%s while starting: %d, want 503", p, rec.Code)
		}
	}
	if rec := get(t, h, http.MethodGet, "/healthz"); rec.Code != 200 {
		t.Errorf("liveness while starting: %d, want 200", rec.Code)
	}
	clk.Set(t0.Add(3 * time.Second))
	for _, p := range []string{"/startupz", "/readyz", "/"} {
		if rec := get(t, h, http.MethodGet, p); rec.Code != 200 {
			t.Errorf("%s after startup: %d, want 200", p, rec.Code)
		}
	}
}

func TestReadinessModes(t *testing.T) {
	var depStatus atomic.Int32
	depStatus.Store(200)
	dep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if depStatus.Load() == 0 {
			time.Sleep(2 * time.Second) // a hanging dependency
		}
		w.WriteHeader(int(depStatus.Load()))
	}))
	defer dep.Close()

	h := NewApp(testConfig(t, map[string]string{
		"READINESS_DEPENDENCY_URL": dep.URL, "DEPENDENCY_TIMEOUT_MS": "100"}), "test", nil, quietLogger()).Handler()
	if rec := get(t, h, http.MethodGet, "/readyz"); rec.Code != 200 {
		t.Fatalf("dependency up: %d", rec.Code)
	}
	depStatus.Store(500)
	if rec := get(t, h, http.MethodGet, "/readyz"); rec.Code != 503 || !strings.Contains(rec.Body.String(), "dependency") {
		t.Fatalf("dependency 500: %d %s", rec.Code, rec.Body)
	}
	if rec := get(t, h, http.MethodGet, "/healthz"); rec.Code != 200 {
		t.Fatalf("independent liveness must not follow the dependency: %d", rec.Code)
	}
	depStatus.Store(0)
	t0 := time.Now()
	if rec := get(t, h, http.MethodGet, "/readyz"); rec.Code != 503 {
		t.Fatalf("dependency hanging: %d", rec.Code)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("dependency check took %s despite a 100 ms timeout", d)
	}
	depStatus.Store(200)

	always := NewApp(testConfig(t, map[string]string{"READINESS": "always", "STARTUP_DELAY": "1h"}), "test", nil, quietLogger())
	always.draining.Store(true)
	if rec := get(t, always.Handler(), http.MethodGet, "/readyz"); rec.Code != 200 {
		t.Fatalf("READINESS=always: %d", rec.Code)
	}
	failing := NewApp(testConfig(t, map[string]string{"READINESS": "fail"}), "test", nil, quietLogger())
	if rec := get(t, failing.Handler(), http.MethodGet, "/readyz"); rec.Code != 503 {
		t.Fatalf("READINESS=fail: %d", rec.Code)
	}

	// Liveness that follows the dependency (the bad practice).
	depStatus.Store(500)
	bad := NewApp(testConfig(t, map[string]string{"LIVENESS": "dependency", "READINESS_DEPENDENCY_URL": dep.URL}), "test", nil, quietLogger())
	if rec := get(t, bad.Handler(), http.MethodGet, "/healthz"); rec.Code != 503 {
		t.Fatalf("LIVENESS=dependency with the dependency down: %d", rec.Code)
	}
}

func TestManualReadiness(t *testing.T) {
	h := NewApp(testConfig(t, nil), "test", nil, quietLogger()).Handler()
	get(t, h, http.MethodPost, "/admin/readiness?ready=false")
	if rec := get(t, h, http.MethodGet, "/readyz"); rec.Code != 503 {
		t.Fatal("readiness set false")
	}
	get(t, h, http.MethodPost, "/admin/readiness?ready=true")
	if rec := get(t, h, http.MethodGet, "/readyz"); rec.Code != 200 {
		t.Fatal("readiness set true")
	}
}

func TestLivenessHang(t *testing.T) {
	app := NewApp(testConfig(t, nil), "test", nil, quietLogger())
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	client := &http.Client{Timeout: 200 * time.Millisecond}

	if resp, err := http.Post(srv.URL+"/admin/hang-liveness", "", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("hang: %v", err)
	}
	if _, err := client.Get(srv.URL + "/healthz"); err == nil {
		t.Fatal("liveness answered while hung")
	}
	if resp, err := client.Get(srv.URL + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatal("readiness must not hang with liveness")
	}
	if _, err := http.Post(srv.URL+"/admin/unhang-liveness", "", nil); err != nil {
		t.Fatal(err)
	}
	if resp, err := client.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("liveness after unhang: %v", err)
	}

	// A timed hang ends by itself.
	if _, err := http.Post(srv.URL+"/admin/hang-liveness?ms=100", "", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if resp, err := client.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("liveness after a 100 ms hang: %v", err)
	}
}

func TestErrorRateIsExact(t *testing.T) {
	h := NewApp(testConfig(t, map[string]string{"ERROR_RATE": "0.25"}), "test", nil, quietLogger()).Handler()
	fails := 0
	for i := 0; i < 1000; i++ {
		if get(t, h, http.MethodGet, "/").Code == 500 {
			fails++
		}
	}
	if fails != 250 {
		t.Fatalf("ERROR_RATE=0.25 over 1000 requests: %d failures", fails)
	}
}

func TestCPUWork(t *testing.T) {
	h := NewApp(testConfig(t, nil), "test", nil, quietLogger()).Handler()
	t0 := time.Now()
	if rec := get(t, h, http.MethodGet, "/work?ms=30"); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	if d := time.Since(t0); d < 30*time.Millisecond {
		t.Fatalf("/work?ms=30 took %s", d)
	}
	if rec := get(t, h, http.MethodGet, "/work?ms=x"); rec.Code != 400 {
		t.Fatal("bad ms accepted")
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{
		"SHUTDOWN": "sometimes", "DRAIN_SECONDS": "-1", "STARTUP_DELAY": "soon", "READINESS": "maybe",
		"ERROR_RATE": "2", "READINESS_DEPENDENCY_URL": "dep:8080", "ADMIN": "perhaps",
	} {
		_, err := LoadConfig(func(k string) string {
			if k == name {
				return val
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v does not name the variable", name, val, err)
		}
	}
	if _, err := LoadConfig(func(k string) string { return map[string]string{"LIVENESS": "dependency"}[k] }); err == nil {
		t.Error("LIVENESS=dependency without a URL accepted")
	}
	cfg := testConfig(t, map[string]string{"DRAIN_SECONDS": "2.5", "STARTUP_DELAY": "1500ms", "CPU_WORK_MS": "3"})
	if cfg.Drain != 2500*time.Millisecond || cfg.StartupDelay != 1500*time.Millisecond || cfg.CPUWork != 3*time.Millisecond {
		t.Errorf("parsed %+v", cfg)
	}
}

// startServing runs app.Serve on a loopback port and returns its URL, the
// signal channel and the channel Serve's result arrives on.
func startServing(t *testing.T, app *App) (string, chan os.Signal, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 2)
	done := make(chan error, 1)
	go func() { done <- app.Serve(context.Background(), ln, sigs) }()
	return "http://" + ln.Addr().String(), sigs, done
}

func TestGracefulShutdownDrainsThenStops(t *testing.T) {
	cfg := testConfig(t, map[string]string{"DRAIN_SECONDS": "0.4"})
	app := NewApp(cfg, "test", nil, quietLogger())
	url, sigs, done := startServing(t, app)

	if resp, err := http.Get(url + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("ready before SIGTERM: %v", err)
	}
	t0 := time.Now()
	sigs <- syscall.SIGTERM
	time.Sleep(50 * time.Millisecond)

	resp, err := http.Get(url + "/readyz")
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("readiness must fail while draining: %v %v", resp, err)
	}
	resp, err = http.Get(url + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/ must still serve while draining: %v %v", resp, err)
	}
	if !resp.Close {
		t.Error("responses while draining should carry Connection: close")
	}

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
	if d := time.Since(t0); d < 400*time.Millisecond {
		t.Fatalf("stopped after %s, before the 400 ms drain", d)
	}
	if _, err := http.Get(url + "/"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	cfg := testConfig(t, map[string]string{"DRAIN_SECONDS": "0", "LATENCY_MS": "300"})
	app := NewApp(cfg, "test", nil, quietLogger())
	url, sigs, done := startServing(t, app)

	result := make(chan error, 1)
	go func() {
		resp, err := http.Get(url + "/")
		if err == nil && resp.StatusCode != 200 {
			err = errors.New(resp.Status)
		}
		result <- err
	}()
	time.Sleep(100 * time.Millisecond)
	sigs <- syscall.SIGTERM
	if err := <-result; err != nil {
		t.Fatalf("in-flight request broken by graceful shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSecondSignalCutsDrainShort(t *testing.T) {
	app := NewApp(testConfig(t, map[string]string{"DRAIN_SECONDS": "30"}), "test", nil, quietLogger())
	_, sigs, done := startServing(t, app)
	sigs <- syscall.SIGTERM
	time.Sleep(20 * time.Millisecond)
	sigs <- syscall.SIGINT
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("second signal did not end the drain")
	}
}

func TestImmediateShutdown(t *testing.T) {
	app := NewApp(testConfig(t, map[string]string{"SHUTDOWN": "immediate", "DRAIN_SECONDS": "30"}), "test", nil, quietLogger())
	_, sigs, done := startServing(t, app)
	t0 := time.Now()
	sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		if !errors.Is(err, ErrImmediateExit) {
			t.Fatalf("Serve returned %v, want ErrImmediateExit", err)
		}
	case <-time.After(time.Second):
		t.Fatal("SHUTDOWN=immediate did not return at once")
	}
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Fatalf("immediate exit took %s", d)
	}
}

func TestMetricsCountTheLoadByStatusOnly(t *testing.T) {
	h := NewApp(testConfig(t, map[string]string{"ERROR_RATE": "0.25"}), "test", nil, quietLogger()).Handler()
	for i := 0; i < 8; i++ {
		get(t, h, http.MethodGet, "/")
	}
	get(t, h, http.MethodGet, "/healthz")
	get(t, h, http.MethodGet, "/readyz")
	get(t, h, http.MethodGet, "/metrics")
	body := get(t, h, http.MethodGet, "/metrics").Body.String()
	for _, want := range []string{
		"# TYPE http_requests_total counter\n",
		"http_requests_total{code=\"200\"} 6\n",
		"http_requests_total{code=\"500\"} 2\n",
		"http_requests_total{code=\"503\"} 0\n",
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

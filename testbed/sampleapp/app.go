package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrImmediateExit is returned by Serve when SHUTDOWN=immediate and a
// termination signal arrived: the caller exits the process at once, which
// resets every open connection, as a crashing or careless app would.
var ErrImmediateExit = errors.New("immediate exit on termination signal")

// maxOutageMs bounds one injected outage (10 minutes).
const maxOutageMs = 600_000

// Outage is one injected failure window: every request to / (and /work)
// handled at an instant t with Start <= t < End is answered 503.
type Outage struct {
	ID         int64     `json:"id"`
	DurationMs int64     `json:"duration_ms"`
	StartNs    int64     `json:"start_unix_nano"`
	EndNs      int64     `json:"end_unix_nano"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	// start and end keep the monotonic clock reading for comparisons.
	start, end time.Time
}

// App is the sample application: its HTTP handlers and lifecycle state.
type App struct {
	cfg     Config
	version string
	now     func() time.Time
	log     *log.Logger
	depHTTP *http.Client

	readyAt time.Time // end of the startup delay

	draining     atomic.Bool
	manualUnfit  atomic.Bool // POST /admin/readiness?ready=false
	requestCount atomic.Uint64
	answered     answeredCounts // GET /metrics: http_requests_total by code

	mu        sync.RWMutex
	outages   []Outage  // newest last, at most maxOutageHistory
	maxEnd    time.Time // latest end of any outage: the fast path of InOutage
	nextID    int64
	hung      bool
	hangUntil time.Time     // zero: until unhung
	unhang    chan struct{} // closed when the liveness hang ends

	exit func(code int) // POST /admin/exit
}

const maxOutageHistory = 1000

// NewApp returns an App whose startup delay starts now.
func NewApp(cfg Config, version string, now func() time.Time, logger *log.Logger) *App {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	}
	return &App{
		cfg:     cfg,
		version: version,
		now:     now,
		log:     logger,
		depHTTP: &http.Client{
			Timeout: cfg.DependencyTimeout,
			// A fresh connection per check, so a check goes through the
			// Service's current endpoints, not a connection to a dead pod.
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		},
		readyAt: now().Add(cfg.StartupDelay),
		unhang:  make(chan struct{}),
		exit:    os.Exit,
	}
}

// Handler returns the app's routes.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.handleRoot)
	mux.HandleFunc("GET /work", a.handleWork)
	mux.HandleFunc("GET /healthz", a.handleHealthz)
	mux.HandleFunc("GET /readyz", a.handleReadyz)
	mux.HandleFunc("GET /startupz", a.handleStartupz)
	mux.HandleFunc("GET /version", a.handleVersion)
	mux.HandleFunc("GET /metrics", a.handleMetrics)
	if a.cfg.Admin {
		mux.HandleFunc("POST /admin/outage", a.handleOutage)
		mux.HandleFunc("GET /admin/outages", a.handleOutages)
		mux.HandleFunc("POST /admin/hang-liveness", a.handleHang)
		mux.HandleFunc("POST /admin/unhang-liveness", a.handleUnhang)
		mux.HandleFunc("POST /admin/readiness", a.handleManualReadiness)
		mux.HandleFunc("POST /admin/exit", a.handleExit)
		mux.HandleFunc("GET /admin/state", a.handleState)
	}
	return mux
}

func (a *App) started(t time.Time) bool { return !t.Before(a.readyAt) }

// common sets the headers every response carries.
func (a *App) common(w http.ResponseWriter, t time.Time) {
	h := w.Header()
	h.Set("X-Pod-Name", a.cfg.PodName)
	if a.cfg.NodeName != "" {
		h.Set("X-Node-Name", a.cfg.NodeName)
	}
	h.Set("X-Handled-At", strconv.FormatInt(t.UnixNano(), 10))
	if a.draining.Load() && a.cfg.DrainCloseConns {
		// Ask keep-alive clients to reconnect, so their next request goes
		// through the Service to a pod that is not leaving.
		h.Set("Connection", "close")
	}
}

// InOutage reports whether t lies inside an injected outage window.
func (a *App) InOutage(t time.Time) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !t.Before(a.maxEnd) {
		return false
	}
	for i := len(a.outages) - 1; i >= 0; i-- {
		o := a.outages[i]
		if !t.Before(o.start) && t.Before(o.end) {
			return true
		}
	}
	return false
}

// serveLoad is the shared path of / and /work.
func (a *App) serveLoad(w http.ResponseWriter, r *http.Request, work time.Duration) {
	t := a.now()
	a.common(w, t)
	n := a.requestCount.Add(1)
	switch {
	case a.InOutage(t):
		a.answered.unavailable.Add(1)
		http.Error(w, "outage", http.StatusServiceUnavailable)
		return
	case !a.started(t):
		a.answered.unavailable.Add(1)
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	case a.failThisOne(n):
		a.answered.internalError.Add(1)
		http.Error(w, "injected error", http.StatusInternalServerError)
		return
	}
	a.answered.ok.Add(1)
	if work > 0 {
		burnCPU(work)
	}
	if a.cfg.Latency > 0 {
		select {
		case <-time.After(a.cfg.Latency):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ok %s\n", a.cfg.PodName)
}

// failThisOne spreads ERROR_RATE evenly and deterministically: request n
// fails when floor(n*rate) steps up.
func (a *App) failThisOne(n uint64) bool {
	rate := a.cfg.ErrorRate
	if rate <= 0 {
		return false
	}
	return uint64(float64(n)*rate) > uint64(float64(n-1)*rate)
}

func (a *App) handleRoot(w http.ResponseWriter, r *http.Request) {
	a.serveLoad(w, r, a.cfg.CPUWork)
}

func (a *App) handleWork(w http.ResponseWriter, r *http.Request) {
	work := a.cfg.CPUWork
	if s := r.URL.Query().Get("ms"); s != "" {
		ms, err := strconv.ParseFloat(s, 64)
		if err != nil || ms < 0 || ms > 10_000 {
			http.Error(w, "ms must be a number from 0 to 10000", http.StatusBadRequest)
			return
		}
		work = time.Duration(ms * float64(time.Millisecond))
	}
	a.serveLoad(w, r, work)
}

// burnCPU spins for d of wall-clock time.
func burnCPU(d time.Duration) {
	end := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(end) {
		for i := 0; i < 2000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink.Store(x)
}

var sink atomic.Uint64

// checkDependency does one GET with the dependency timeout; nil means 2xx.
func (a *App) checkDependency(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := a.depHTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("dependency answered %d", resp.StatusCode)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type probeResult struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

func probe(w http.ResponseWriter, reason string) {
	if reason == "" {
		writeJSON(w, http.StatusOK, probeResult{OK: true})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, probeResult{OK: false, Reason: reason})
}

// readiness returns "" when ready, else why not.
func (a *App) readiness(ctx context.Context, t time.Time) string {
	switch a.cfg.Readiness {
	case "always":
		return ""
	case "fail":
		return "READINESS=fail"
	}
	switch {
	case !a.started(t):
		return "starting"
	case a.draining.Load():
		return "draining"
	case a.manualUnfit.Load():
		return "set not ready by /admin/readiness"
	}
	if u := a.cfg.ReadinessDepURL; u != "" {
		if err := a.checkDependency(ctx, u); err != nil {
			return "dependency: " + err.Error()
		}
	}
	return ""
}

func (a *App) handleReadyz(w http.ResponseWriter, r *http.Request) {
	t := a.now()
	a.common(w, t)
	probe(w, a.readiness(r.Context(), t))
}

func (a *App) handleStartupz(w http.ResponseWriter, r *http.Request) {
	t := a.now()
	a.common(w, t)
	if !a.started(t) {
		probe(w, "starting")
		return
	}
	probe(w, "")
}

func (a *App) handleHealthz(w http.ResponseWriter, r *http.Request) {
	t := a.now()
	a.common(w, t)
	a.mu.RLock()
	hung, until, unhang := a.hung, a.hangUntil, a.unhang
	a.mu.RUnlock()
	if hung {
		var timer <-chan time.Time
		if !until.IsZero() {
			timer = time.After(until.Sub(t))
		}
		select {
		case <-r.Context().Done(): // the prober gave up: that is the point
			return
		case <-unhang:
		case <-timer:
		}
	}
	if a.cfg.Liveness == "dependency" {
		if err := a.checkDependency(r.Context(), a.cfg.LivenessDepURL); err != nil {
			probe(w, "dependency: "+err.Error())
			return
		}
	}
	probe(w, "")
}

func (a *App) handleVersion(w http.ResponseWriter, r *http.Request) {
	a.common(w, a.now())
	writeJSON(w, http.StatusOK, map[string]string{"version": a.version})
}

// StartOutage begins an outage of exactly ms milliseconds, now.
func (a *App) StartOutage(ms int64) Outage {
	a.mu.Lock()
	defer a.mu.Unlock()
	start := a.now()
	end := start.Add(time.Duration(ms) * time.Millisecond)
	a.nextID++
	o := Outage{
		ID: a.nextID, DurationMs: ms,
		StartNs: start.UnixNano(), EndNs: end.UnixNano(),
		Start: start.Round(0).UTC(), End: end.Round(0).UTC(),
		start: start, end: end,
	}
	a.outages = append(a.outages, o)
	if end.After(a.maxEnd) {
		a.maxEnd = end
	}
	if len(a.outages) > maxOutageHistory {
		a.outages = append([]Outage(nil), a.outages[len(a.outages)-maxOutageHistory:]...)
	}
	return o
}

func (a *App) handleOutage(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.ParseInt(r.URL.Query().Get("ms"), 10, 64)
	if err != nil || ms <= 0 || ms > maxOutageMs {
		writeJSON(w, http.StatusBadRequest, map[string]string{
			"error": fmt.Sprintf("ms must be an integer from 1 to %d", maxOutageMs)})
		return
	}
	o := a.StartOutage(ms)
	a.log.Printf("outage %d: %d ms from %d to %d (unix ns)", o.ID, ms, o.StartNs, o.EndNs)
	writeJSON(w, http.StatusOK, o)
}

func (a *App) handleOutages(w http.ResponseWriter, r *http.Request) {
	t := a.now()
	a.mu.RLock()
	list := append([]Outage{}, a.outages...)
	a.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"now_unix_nano": t.UnixNano(), "active": a.InOutage(t), "outages": list})
}

func (a *App) handleHang(w http.ResponseWriter, r *http.Request) {
	var until time.Time
	if s := r.URL.Query().Get("ms"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms <= 0 {
			http.Error(w, "ms must be a positive integer (omit it to hang until unhung)", http.StatusBadRequest)
			return
		}
		until = a.now().Add(time.Duration(ms) * time.Millisecond)
	}
	a.mu.Lock()
	if !a.hung {
		a.unhang = make(chan struct{})
	}
	a.hung, a.hangUntil = true, until
	a.mu.Unlock()
	if !until.IsZero() {
		time.AfterFunc(until.Sub(a.now()), func() { a.setUnhung(until) })
	}
	a.log.Printf("liveness hangs (until=%v)", until)
	writeJSON(w, http.StatusOK, map[string]any{"hung": true, "until_unix_nano": unixNanoOrZero(until)})
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// setUnhung ends the hang; when onlyIf is set, only the hang that ends then.
func (a *App) setUnhung(onlyIf time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.hung || (!onlyIf.IsZero() && !a.hangUntil.Equal(onlyIf)) {
		return
	}
	a.hung = false
	close(a.unhang)
}

func (a *App) handleUnhang(w http.ResponseWriter, r *http.Request) {
	a.setUnhung(time.Time{})
	a.log.Printf("liveness no longer hangs")
	writeJSON(w, http.StatusOK, map[string]bool{"hung": false})
}

func (a *App) handleManualReadiness(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.ParseBool(r.URL.Query().Get("ready"))
	if err != nil {
		http.Error(w, "ready must be true or false", http.StatusBadRequest)
		return
	}
	a.manualUnfit.Store(!v)
	a.log.Printf("readiness set by admin: ready=%v", v)
	writeJSON(w, http.StatusOK, map[string]bool{"ready": v})
}

func (a *App) handleExit(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.URL.Query().Get("code"))
	if err != nil {
		code = 1
	}
	a.log.Printf("exiting with code %d on /admin/exit", code)
	writeJSON(w, http.StatusOK, map[string]int{"code": code})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go func() { time.Sleep(50 * time.Millisecond); a.exit(code) }()
}

func (a *App) handleState(w http.ResponseWriter, r *http.Request) {
	t := a.now()
	a.mu.RLock()
	hung := a.hung
	a.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"version":         a.version,
		"pod":             a.cfg.PodName,
		"node":            a.cfg.NodeName,
		"started":         a.started(t),
		"draining":        a.draining.Load(),
		"liveness_hung":   hung,
		"manual_not_rdy":  a.manualUnfit.Load(),
		"in_outage":       a.InOutage(t),
		"requests":        a.requestCount.Load(),
		"shutdown":        a.cfg.Shutdown,
		"drain_seconds":   a.cfg.Drain.Seconds(),
		"startup_delay_s": a.cfg.StartupDelay.Seconds(),
		"readiness":       a.cfg.Readiness,
		"readiness_dep":   a.cfg.ReadinessDepURL,
		"liveness":        a.cfg.Liveness,
		"liveness_dep":    a.cfg.LivenessDepURL,
		"cpu_work_ms":     float64(a.cfg.CPUWork) / float64(time.Millisecond),
		"latency_ms":      float64(a.cfg.Latency) / float64(time.Millisecond),
		"error_rate":      a.cfg.ErrorRate,
	})
}

// Serve serves on ln until a signal arrives on sigs (or ctx ends, treated
// like SIGTERM). Graceful mode: readiness fails at once, requests are still
// served for the drain time (a second signal cuts it short), then the server
// stops accepting and finishes in-flight requests within the shutdown
// timeout. Immediate mode: returns ErrImmediateExit at once.
func (a *App) Serve(ctx context.Context, ln net.Listener, sigs <-chan os.Signal) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          a.log,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	a.log.Printf("sampleapp %s serving on %s (pod=%s shutdown=%s drain=%s startup_delay=%s readiness=%s liveness=%s)",
		a.version, ln.Addr(), a.cfg.PodName, a.cfg.Shutdown, a.cfg.Drain, a.cfg.StartupDelay, a.cfg.Readiness, a.cfg.Liveness)

	var why string
	select {
	case err := <-serveErr:
		return err
	case s := <-sigs:
		why = s.String()
	case <-ctx.Done():
		why = "context done"
	}
	if a.cfg.Shutdown == "immediate" {
		a.log.Printf("%s: SHUTDOWN=immediate, exiting now", why)
		return ErrImmediateExit
	}
	a.draining.Store(true)
	a.log.Printf("%s: draining: readiness fails, serving for %s more", why, a.cfg.Drain)
	if a.cfg.Drain > 0 {
		timer := time.NewTimer(a.cfg.Drain)
		select {
		case <-timer.C:
		case s := <-sigs:
			timer.Stop()
			a.log.Printf("%s: drain cut short", s)
		}
	}
	a.log.Printf("drain over: closing listener, finishing in-flight requests (timeout %s)", a.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		a.log.Printf("shutdown: %v", err)
		_ = srv.Close()
	}
	a.log.Printf("stopped")
	return err
}

// answeredCounts counts the load's requests (/ and /work) by the status they
// were answered with. Probe and admin requests are not counted, so the count is
// the traffic the load sent this pod (what aftershock attributes to pods).
type answeredCounts struct {
	ok, internalError, unavailable atomic.Uint64
}

// handleMetrics serves the counts in the Prometheus text format.
func (a *App) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	fmt.Fprint(w, "# HELP http_requests_total Requests to / and /work this pod answered, by status.\n")
	fmt.Fprint(w, "# TYPE http_requests_total counter\n")
	for _, c := range []struct {
		code string
		n    *atomic.Uint64
	}{{"200", &a.answered.ok}, {"500", &a.answered.internalError}, {"503", &a.answered.unavailable}} {
		fmt.Fprintf(w, "http_requests_total{code=%q} %d\n", c.code, c.n.Load())
	}
}

package main

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config holds every knob of the sample app. Each field is read from one
// environment variable; README.md documents them all.
type Config struct {
	Listen string // LISTEN (or --listen): address to serve on.

	Shutdown        string        // SHUTDOWN: "graceful" or "immediate".
	Drain           time.Duration // DRAIN_SECONDS: keep serving this long after SIGTERM.
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT_SECONDS: bound on finishing in-flight requests.
	DrainCloseConns bool          // DRAIN_CLOSE_CONNECTIONS: send "Connection: close" while draining.

	StartupDelay time.Duration // STARTUP_DELAY: time before startup/readiness pass.

	Readiness         string        // READINESS: "normal", "always" or "fail".
	ReadinessDepURL   string        // READINESS_DEPENDENCY_URL: ready only while GET returns 2xx.
	Liveness          string        // LIVENESS: "independent" or "dependency".
	LivenessDepURL    string        // LIVENESS_DEPENDENCY_URL (defaults to READINESS_DEPENDENCY_URL).
	DependencyTimeout time.Duration // DEPENDENCY_TIMEOUT_MS: timeout of one dependency check.

	CPUWork   time.Duration // CPU_WORK_MS: busy CPU per request to /.
	Latency   time.Duration // LATENCY_MS: sleep per request to /.
	ErrorRate float64       // ERROR_RATE: fraction (0..1) of requests to / answered 500.

	Admin bool // ADMIN: "enabled" (default) or "disabled".

	PodName  string // POD_NAME (falls back to the hostname).
	NodeName string // NODE_NAME (optional).
}

type configError struct{ name, value, want string }

func (e *configError) Error() string {
	return fmt.Sprintf("invalid %s=%q: want %s", e.name, e.value, e.want)
}

// LoadConfig reads the configuration from getenv (os.Getenv in production).
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Listen:            ":8080",
		Shutdown:          "graceful",
		Drain:             5 * time.Second,
		ShutdownTimeout:   10 * time.Second,
		DrainCloseConns:   true,
		Readiness:         "normal",
		Liveness:          "independent",
		DependencyTimeout: 500 * time.Millisecond,
		Admin:             true,
	}
	var err error
	str := func(name string, dst *string, allowed ...string) {
		v := strings.TrimSpace(getenv(name))
		if v == "" || err != nil {
			return
		}
		if len(allowed) > 0 {
			ok := false
			for _, a := range allowed {
				ok = ok || v == a
			}
			if !ok {
				err = &configError{name, v, "one of " + strings.Join(allowed, ", ")}
				return
			}
		}
		*dst = v
	}
	dur := func(name string, dst *time.Duration, unit time.Duration) {
		v := strings.TrimSpace(getenv(name))
		if v == "" || err != nil {
			return
		}
		d, e := parseDuration(v, unit)
		if e != nil {
			err = &configError{name, v, "a non-negative number (unit " + unit.String() + ") or a Go duration such as 1.5s"}
			return
		}
		*dst = d
	}
	boolean := func(name string, dst *bool, yes, no string) {
		v := strings.ToLower(strings.TrimSpace(getenv(name)))
		switch {
		case v == "" || err != nil:
		case v == yes || v == "true" || v == "1":
			*dst = true
		case v == no || v == "false" || v == "0":
			*dst = false
		default:
			err = &configError{name, v, yes + " or " + no}
		}
	}

	str("LISTEN", &c.Listen)
	str("SHUTDOWN", &c.Shutdown, "graceful", "immediate")
	dur("DRAIN_SECONDS", &c.Drain, time.Second)
	dur("SHUTDOWN_TIMEOUT_SECONDS", &c.ShutdownTimeout, time.Second)
	boolean("DRAIN_CLOSE_CONNECTIONS", &c.DrainCloseConns, "true", "false")
	dur("STARTUP_DELAY", &c.StartupDelay, time.Second)
	str("READINESS", &c.Readiness, "normal", "always", "fail")
	str("READINESS_DEPENDENCY_URL", &c.ReadinessDepURL)
	str("LIVENESS", &c.Liveness, "independent", "dependency")
	str("LIVENESS_DEPENDENCY_URL", &c.LivenessDepURL)
	dur("DEPENDENCY_TIMEOUT_MS", &c.DependencyTimeout, time.Millisecond)
	dur("CPU_WORK_MS", &c.CPUWork, time.Millisecond)
	dur("LATENCY_MS", &c.Latency, time.Millisecond)
	boolean("ADMIN", &c.Admin, "enabled", "disabled")
	str("POD_NAME", &c.PodName)
	str("NODE_NAME", &c.NodeName)
	if v := strings.TrimSpace(getenv("ERROR_RATE")); v != "" && err == nil {
		f, e := strconv.ParseFloat(v, 64)
		if e != nil || f < 0 || f > 1 {
			err = &configError{"ERROR_RATE", v, "a number from 0 to 1"}
		}
		c.ErrorRate = f
	}
	if err != nil {
		return c, err
	}
	if c.LivenessDepURL == "" {
		c.LivenessDepURL = c.ReadinessDepURL
	}
	for name, u := range map[string]string{"READINESS_DEPENDENCY_URL": c.ReadinessDepURL, "LIVENESS_DEPENDENCY_URL": c.LivenessDepURL} {
		if u == "" {
			continue
		}
		p, e := url.Parse(u)
		if e != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return c, &configError{name, u, "an absolute http:// or https:// URL"}
		}
	}
	if c.Liveness == "dependency" && c.LivenessDepURL == "" {
		return c, &configError{"LIVENESS", c.Liveness, "LIVENESS_DEPENDENCY_URL or READINESS_DEPENDENCY_URL to be set too"}
	}
	if c.PodName == "" {
		c.PodName, _ = os.Hostname()
	}
	return c, nil
}

// parseDuration accepts a plain number in the given unit ("5", "0.5") or a Go
// duration ("1500ms", "2s").
func parseDuration(v string, unit time.Duration) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 {
			return 0, fmt.Errorf("negative")
		}
		return time.Duration(f * float64(unit)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration")
	}
	return d, nil
}

// Command sampleapp is aftershock's system under test: a small HTTP server
// whose shutdown, probe, CPU and failure behaviour is set by environment
// variables (see README.md), so experiments can tell good behaviour from bad.
//
//	sampleapp [serve] [--listen ADDR]   serve (the default)
//	sampleapp prestop --sleep SECONDS   sleep, for an exec preStop hook
//	sampleapp version                   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		os.Exit(serve(args))
	case "prestop":
		os.Exit(prestop(args))
	case "version":
		fmt.Println(version)
	default:
		fmt.Fprintf(os.Stderr, "sampleapp: unknown command %q (want serve, prestop or version)\n", cmd)
		os.Exit(2)
	}
}

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "", "address to listen on (overrides LISTEN; default :8080)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds|log.LUTC)
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		logger.Printf("config: %v", err)
		return 2
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	// Trap signals before anything else, so an early SIGTERM is handled.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	app := NewApp(cfg, version, time.Now, logger)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		logger.Printf("listen %s: %v", cfg.Listen, err)
		return 1
	}
	err = app.Serve(context.Background(), ln, sigs)
	switch {
	case errors.Is(err, ErrImmediateExit):
		return 143 // as if killed by SIGTERM
	case err != nil:
		logger.Printf("serve: %v", err)
		return 1
	}
	return 0
}

func prestop(args []string) int {
	fs := flag.NewFlagSet("prestop", flag.ContinueOnError)
	sleep := fs.Duration("sleep", 5*time.Second, "how long to sleep (Go duration, e.g. 5s)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	time.Sleep(*sleep)
	return 0
}

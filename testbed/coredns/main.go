// Command coredns is CoreDNS with only the plugins the testbed's in-cluster DNS needs.
//
// There is deliberately no forward plugin: names outside cluster.local are never
// resolved through the host, so no DNS query leaves the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// Same relative order as upstream's plugin.cfg: each plugin sees only those after it.
var directives = []string{
	"bind", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes",
}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }

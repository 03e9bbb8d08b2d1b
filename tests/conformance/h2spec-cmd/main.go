// Command h2spec: a minimal command line for the h2spec conformance library
// (github.com/summerwind/h2spec, in ../shared/tools/h2spec-src). The shared
// source tree lacks its cmd/h2spec directory, so `make build/h2spec` builds
// this file against that library when the shared build script cannot.
// Written for Switchyard; it uses only the standard flag package.
//
//	h2spec -h HOST -p PORT [-t -k] [-o SECONDS] [-j report.xml] [-S] [-v] [SECTION ...]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/summerwind/h2spec"
	"github.com/summerwind/h2spec/config"
)

func main() {
	c := &config.Config{}
	var timeout int
	flag.StringVar(&c.Host, "h", "127.0.0.1", "target host")
	flag.IntVar(&c.Port, "p", 0, "target port (default 80, or 443 with -t)")
	flag.StringVar(&c.Path, "P", "/", "request path")
	flag.IntVar(&timeout, "o", 2, "time (seconds) to wait for a response")
	flag.IntVar(&c.MaxHeaderLen, "m", 4000, "maximum length of a header value")
	flag.StringVar(&c.JUnitReport, "j", "", "write a JUnit report to this file")
	flag.BoolVar(&c.Strict, "S", false, "strict mode (also the SHOULD cases)")
	flag.BoolVar(&c.DryRun, "dryrun", false, "list the cases, run none")
	flag.BoolVar(&c.TLS, "t", false, "connect over TLS (ALPN h2)")
	flag.BoolVar(&c.Insecure, "k", false, "do not verify the server certificate")
	flag.StringVar(&c.Ciphers, "ciphers", "", "colon-separated TLS cipher suites")
	flag.BoolVar(&c.Verbose, "v", false, "verbose output")
	flag.Parse()
	c.Timeout = time.Duration(timeout) * time.Second
	c.Sections = flag.Args()
	if c.Port == 0 {
		c.Port = 80
		if c.TLS {
			c.Port = 443
		}
	}
	ok, err := h2spec.Run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "h2spec:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// lwgo: the Go TLS client (and HTTP/2 test server) of the integration tests.
// Built by the tests with Debian's golang, standard library only.
//
//	lwgo client -url URL -cafile CA -body FILE [-n N]
//	    POSTs FILE's bytes N times on one connection (HTTP/2 when the server
//	    offers it, as net/http does by default); one JSON line per request on
//	    stdout: {"ok", "status", "proto", "error"}.
//	lwgo client ... -dirty FILE2 -every K -parallel P
//	    N requests from P goroutines at a time, each on its own HTTP/1.1
//	    connection; request i sends FILE2 when i % K == 0, else FILE. Lines
//	    carry "i" and "dirty" too.
//	lwgo serve -addr ADDR [-cert CERT -key KEY | -plain] -log FILE
//	    HTTPS server (HTTP/2 and HTTP/1.1), or plain HTTP/1.1 with -plain;
//	    every request body is appended to FILE.d/bodies and one JSON line per
//	    request to FILE.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

func client(args []string) int {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	url := fs.String("url", "", "URL to POST to")
	cafile := fs.String("cafile", "", "CA certificate (PEM)")
	bodyFile := fs.String("body", "", "request body file")
	n := fs.Int("n", 1, "requests")
	dirtyFile := fs.String("dirty", "", "body of every K-th request")
	every := fs.Int("every", 2, "K")
	parallel := fs.Int("parallel", 0, "requests in flight, each on its own connection")
	fs.Parse(args)
	pem, err := os.ReadFile(*cafile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	if *parallel > 0 {
		return parallelClient(*url, pool, body, *dirtyFile, *n, *every, *parallel)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	enc := json.NewEncoder(os.Stdout)
	rc := 0
	for i := 0; i < *n; i++ {
		res := map[string]interface{}{"ok": false}
		req, _ := http.NewRequest("POST", *url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			res["error"] = err.Error()
			rc = 1
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			res["ok"] = resp.StatusCode == 200
			res["status"] = resp.StatusCode
			res["proto"] = resp.Proto
		}
		enc.Encode(res)
	}
	return rc
}

// Goroutines that block on the network resume on whichever thread is free:
// the probes must pair each call with its return by goroutine, not thread.
func parallelClient(url string, pool *x509.CertPool, clean []byte, dirtyFile string, n, every, parallel int) int {
	dirty, err := os.ReadFile(dirtyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var mu sync.Mutex
	var wg sync.WaitGroup
	enc := json.NewEncoder(os.Stdout)
	sem := make(chan struct{}, parallel)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			b := clean
			if i%every == 0 {
				b = dirty
			}
			res := map[string]interface{}{"i": i, "dirty": i%every == 0, "ok": false}
			req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				res["error"] = err.Error()
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				res["ok"] = resp.StatusCode == 200
				res["status"] = resp.StatusCode
			}
			mu.Lock()
			enc.Encode(res)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	return 0
}

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "", "listen address")
	cert := fs.String("cert", "", "certificate")
	key := fs.String("key", "", "key")
	logPath := fs.String("log", "", "log file")
	plain := fs.Bool("plain", false, "plain HTTP, no TLS")
	fs.Parse(args)
	os.MkdirAll(*logPath+".d", 0o755)
	var mu sync.Mutex
	logf, err := os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	bodies, err := os.OpenFile(filepath.Join(*logPath+".d", "bodies"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies.Write(b)
		bodies.Write([]byte("\n"))
		json.NewEncoder(logf).Encode(map[string]interface{}{
			"ev": "request", "proto": r.Proto, "path": r.URL.Path, "host": r.Host, "len": len(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"resp-1","choices":[{"message":{"content":"ok"}}]}`))
	})
	srv := &http.Server{Addr: *addr, Handler: h}
	fmt.Println("listening", *addr)
	if *plain {
		err = srv.ListenAndServe()
	} else {
		err = srv.ListenAndServeTLS(*cert, *key)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lwgo client|serve ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "client":
		os.Exit(client(os.Args[2:]))
	case "serve":
		os.Exit(serve(os.Args[2:]))
	}
	fmt.Fprintln(os.Stderr, "usage: lwgo client|serve ...")
	os.Exit(2)
}

package procnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/localnet"
)

// Build compiles the edgesync binary into dir and returns its path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "edgesync")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/edgesync/edgesync/cmd/edgesync")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build edgesync: %w", err)
	}
	return bin, nil
}

// Net is a set of node processes sharing one PKI and admin token.
type Net struct {
	Bin, Dir, PKIDir string
	AdminToken       string
	Log              io.Writer // node output; nil discards
	LogLevel         string    // node --log-level; "" means warn
	hc               *http.Client
}

// New prepares the PKI under dir.
func New(bin, dir string) (*Net, error) {
	n := &Net{Bin: bin, Dir: dir, PKIDir: filepath.Join(dir, "pki"), AdminToken: "bench-admin-token-0123456789"}
	if err := pki.Init(n.PKIDir); err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(filepath.Join(n.PKIDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	n.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return n, nil
}

// Proc is one node process; Start and Kill may be repeated.
type Proc struct {
	n    *Net
	Name string
	Args []string
	URL  string
	Data string
	cmd  *exec.Cmd
	done chan struct{}
}

// Central describes a central node to start.
func (n *Net) Central(name string, bootstrap bool, join string) (*Proc, error) {
	if _, _, err := pki.Issue(n.PKIDir, pki.IssueRequest{Role: pki.RoleCentral, Name: name}); err != nil {
		return nil, err
	}
	addrs, err := freeAddrs()
	if err != nil {
		return nil, err
	}
	p := &Proc{n: n, Name: name, Data: filepath.Join(n.Dir, name), URL: "https://" + addrs.http}
	p.Args = []string{"central", "run", "--data", p.Data, "--node-id", name, "--pki", n.PKIDir,
		"--raft-addr", addrs.raft, "--sync-addr", addrs.udp, "--sync-tcp-addr", addrs.tcp, "--http-addr", addrs.http, "--admin-token", n.AdminToken}
	p.Args = append(p.Args, joinArgs(bootstrap, join)...)
	return p, nil
}

// SyncAddr returns a central's --sync-addr (quic) or --sync-tcp-addr (tcp).
func (p *Proc) SyncAddr(transport string) string {
	flag := "--sync-addr"
	if transport == "tcp" {
		flag = "--sync-tcp-addr"
	}
	for i, a := range p.Args {
		if a == flag {
			return p.Args[i+1]
		}
	}
	return ""
}

// Relay describes a relay node to start.
func (n *Net) Relay(site, name string, centrals []string, transport string, bootstrap bool, join string, extra ...string) (*Proc, error) {
	return n.RelayAt("127.0.0.1", site, name, centrals, transport, bootstrap, join, extra...)
}

// RelayAt is Relay with the raft listener on raftIP, another loopback
// address (all of 127.0.0.0/8 is local on Linux). The node dials its raft
// peers from raftIP, so a proxy in front of a peer can tell it by source.
func (n *Net) RelayAt(raftIP, site, name string, centrals []string, transport string, bootstrap bool, join string, extra ...string) (*Proc, error) {
	hosts := []string{"127.0.0.1", "localhost"}
	if raftIP != "127.0.0.1" {
		hosts = append(hosts, raftIP)
	}
	if _, _, err := pki.Issue(n.PKIDir, pki.IssueRequest{Role: pki.RoleRelay, Name: name, Site: site, Hosts: hosts}); err != nil {
		return nil, err
	}
	addrs, err := freeAddrs()
	if err != nil {
		return nil, err
	}
	if raftIP != "127.0.0.1" {
		if addrs.raft, err = FreeTCPOn(raftIP); err != nil {
			return nil, err
		}
	}
	p := &Proc{n: n, Name: name, Data: filepath.Join(n.Dir, name), URL: "https://" + addrs.http}
	p.Args = []string{"relay", "run", "--data", p.Data, "--site", site, "--node-id", name, "--pki", n.PKIDir,
		"--raft-addr", addrs.raft, "--http-addr", addrs.http, "--central", strings.Join(centrals, ","),
		"--uplink-transport", transport, "--admin-token", n.AdminToken, "--disk-warn", "256MiB", "--disk-critical", "64MiB"}
	p.Args = append(p.Args, joinArgs(bootstrap, join)...)
	p.Args = append(p.Args, extra...)
	return p, nil
}

// FreeTCPOn returns a TCP address on ip with a port free right now.
func FreeTCPOn(ip string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Arg returns the value of flag (e.g. "--raft-addr") in the node's Args.
func (p *Proc) Arg(flag string) string {
	for i, a := range p.Args {
		if a == flag && i+1 < len(p.Args) {
			return p.Args[i+1]
		}
	}
	return ""
}

func joinArgs(bootstrap bool, join string) []string {
	if bootstrap {
		return []string{"--bootstrap"}
	}
	return []string{"--join", join}
}

type addrSet struct{ raft, http, udp, tcp string }

func freeAddrs() (a addrSet, err error) {
	for _, dst := range []*string{&a.raft, &a.http, &a.tcp} {
		if *dst, err = localnet.FreeTCP(); err != nil {
			return a, err
		}
	}
	a.udp, err = localnet.FreeUDP()
	return a, err
}

// Start launches the process.
func (p *Proc) Start() error {
	level := p.n.LogLevel
	if level == "" {
		level = "warn"
	}
	cmd := exec.Command(p.n.Bin, append([]string{"--log-level", level}, p.Args...)...)
	if p.n.Log != nil {
		cmd.Stdout, cmd.Stderr = p.n.Log, p.n.Log
	}
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(p.done) }() // owned: Kill/Stop wait on done
	return nil
}

// Signal sends sig (SIGSTOP, SIGCONT...) to the running process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.cmd == nil {
		return errors.New("procnet: not running")
	}
	return p.cmd.Process.Signal(sig)
}

// Exited is closed when the running process exits (by itself or killed);
// nil when not started.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to go.
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// Stop sends SIGTERM and waits.
func (p *Proc) Stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.Kill()
	}
	p.cmd = nil
}

// CPU is the user+system CPU time the process has used so far.
func (p *Proc) CPU() (time.Duration, error) {
	if p.cmd == nil {
		return 0, errors.New("procnet: not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0, errors.New("procnet: short /proc stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// Pid is the process ID, 0 when not running.
func (p *Proc) Pid() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is up.
func (p *Proc) Running() bool { return p.cmd != nil }

// PeakRSS is the process's peak resident set (VmHWM) in bytes.
func (p *Proc) PeakRSS() (uint64, error) { return p.memField("VmHWM:") }

// RSS returns the anonymous and file-backed resident bytes now. File-backed
// pages are Badger's memory-mapped tables and value logs: the kernel can
// drop them under memory pressure, anonymous memory it cannot.
func (p *Proc) RSS() (anon, file uint64, err error) {
	if anon, err = p.memField("RssAnon:"); err != nil {
		return 0, 0, err
	}
	file, err = p.memField("RssFile:")
	return anon, file, err
}

func (p *Proc) memField(name string) (uint64, error) {
	if p.cmd == nil {
		return 0, errors.New("procnet: not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name) {
			f := strings.Fields(line)
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("procnet: no %s in /proc status", name)
}

// Fetch returns the body of an admin-token GET of path.
func (p *Proc) Fetch(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", p.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.n.AdminToken)
	hc := *p.n.hc
	hc.Timeout = 2 * time.Minute
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s %s: %s", p.Name, path, resp.Status)
	}
	return b, err
}

// Get reads an admin API path into out.
func (p *Proc) Get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", p.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.n.AdminToken)
	resp, err := p.n.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s %s", p.Name, path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// RelayStatus is the part of a relay's /api/v1/cluster the harness reads.
type RelayStatus struct {
	Raft struct {
		State   string `json:"state"`
		Members []struct {
			ID string `json:"id"`
		} `json:"members"`
	} `json:"raft"`
	Outbox struct {
		Depth    uint64 `json:"depth"`
		AckedSeq uint64 `json:"acked_seq"`
		NextSeq  uint64 `json:"next_seq"`
	} `json:"outbox"`
}

// Wait polls cond every 50ms until it returns nil or ctx ends.
func Wait(ctx context.Context, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// JoinToken reads the site join token the bootstrap relay wrote.
func (p *Proc) JoinToken(ctx context.Context) (string, error) {
	var tok string
	err := Wait(ctx, func() error {
		b, err := os.ReadFile(filepath.Join(p.Data, "join-token"))
		if err != nil {
			return err
		}
		tok = strings.TrimSpace(string(b))
		return nil
	})
	return tok, err
}

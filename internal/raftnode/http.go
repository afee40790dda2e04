package raftnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// HTTP endpoints (mounted by the app at "/raft/"):
//
//	POST /raft/v1/apply       body: framed entry; 200 body: Apply result
//	GET  /raft/v1/read-index  200 {"index":N}
//	POST /raft/v1/join        {"id","raft_addr","http_addr","cluster_id"}; 200 {"cluster_id"}
//	POST /raft/v1/remove      {"id"}
//	POST /raft/v1/transfer    {"id"} ("" = any)
//	GET  /raft/v1/status      Status
//
// Errors are {"code":N,"error":"...","leader":"..."} with a stable code
// (errors.go).
const (
	headerForwarded = "X-Raftnode-Forwarded"
	headerTimeout   = "X-Raftnode-Timeout-Ms"
	maxJSONBody     = 4 << 10
	maxApplyBody    = MaxCommandSize + 64
	maxResponseBody = 16 << 20
)

type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// ClusterID is the cluster the joiner's data dir belongs to, "" when
	// none or unknown. Older peers neither send nor check it.
	ClusterID string `json:"cluster_id,omitempty"`
}

// joinResponse tells the joiner which cluster it joined. Older peers
// answer {}: the joiner then records the cluster as unknown.
type joinResponse struct {
	ClusterID string `json:"cluster_id,omitempty"`
}

type idRequest struct {
	ID string `json:"id"`
}

type readIndexResponse struct {
	Index uint64 `json:"index"`
}

type errorResponse struct {
	Code   int    `json:"code"`
	Error  string `json:"error"`
	Leader string `json:"leader,omitempty"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("raftnode: marshal %T: %v", v, err))
	}
	return b
}

// Handler serves the raft HTTP endpoints. With Config.TLS set, every
// endpoint except status requires a verified client certificate.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /raft/v1/apply", n.handleApply)
	mux.HandleFunc("GET /raft/v1/read-index", n.handleReadIndex)
	mux.HandleFunc("POST /raft/v1/join", n.handleJoin)
	mux.HandleFunc("POST /raft/v1/remove", n.handleRemove)
	mux.HandleFunc("POST /raft/v1/transfer", n.handleTransfer)
	mux.HandleFunc("GET /raft/v1/status", n.handleStatus)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.cfg.TLS != nil && r.URL.Path != "/raft/v1/status" &&
			(r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
			writeError(w, ErrForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, err error) {
	code := errorToCode(err)
	resp := errorResponse{Code: code, Error: err.Error()}
	var nle *NotLeaderError
	if errors.As(err, &nle) {
		resp.Leader = nle.Leader
	}
	status := http.StatusInternalServerError
	switch code {
	case codeNotLeader, codeNoLeader, codeShutdown, codeLeadershipLost:
		status = http.StatusServiceUnavailable
	case codeTimeout:
		status = http.StatusGatewayTimeout
	case codeBadRequest:
		status = http.StatusBadRequest
	case codeUnknownMember:
		status = http.StatusNotFound
	case codeForbidden:
		status = http.StatusForbidden
	case codeWrongCluster:
		status = http.StatusConflict
	}
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// requestContext applies the caller's remaining deadline, if it sent one.
func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	if ms, err := strconv.ParseInt(r.Header.Get(headerTimeout), 10, 64); err == nil && ms > 0 {
		return context.WithTimeout(r.Context(), time.Duration(ms)*time.Millisecond)
	}
	return context.WithCancel(r.Context())
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrBadRequest, err)
	}
	return b, nil
}

func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) ([]byte, error) {
	b, err := readBody(w, r, maxJSONBody)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return b, nil
}

func (n *Node) notLeader() error {
	_, _, h := n.Leader()
	return &NotLeaderError{Leader: h}
}

func (n *Node) handleApply(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxApplyBody)
	if err == nil {
		err = validateEntry(body)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if !n.IsLeader() {
		writeError(w, n.notLeader())
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	res, err := n.applyLocal(ctx, body)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(res)
}

func (n *Node) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := requestContext(r)
	defer cancel()
	idx, err := n.leaderReadIndex(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, readIndexResponse{Index: idx})
}

// forwardIfFollower relays a membership request to the leader (one hop).
// It returns true when it has written the response.
func (n *Node) forwardIfFollower(w http.ResponseWriter, r *http.Request, path string, body []byte, op string) bool {
	if n.IsLeader() {
		return false
	}
	if r.Header.Get(headerForwarded) != "" {
		writeError(w, n.notLeader())
		return true
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	if _, err := n.forward(ctx, http.MethodPost, path, body, op); err != nil {
		writeError(w, err)
		return true
	}
	writeJSON(w, struct{}{})
	return true
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	body, err := decodeJSONBody(w, r, &req)
	if err == nil && (req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" ||
		len(req.ID) > maxMetaField || len(req.HTTPAddr) > maxMetaField || len(req.ClusterID) > maxMetaField) {
		err = fmt.Errorf("%w: join needs id, raft_addr and http_addr", ErrBadRequest)
	}
	if own := n.ClusterID(); err == nil && req.ClusterID != "" && own != "" && req.ClusterID != own {
		err = fmt.Errorf("%w: this member is of cluster %s, the data dir of node %s belongs to cluster %s",
			ErrWrongCluster, own, req.ID, req.ClusterID)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	if !n.IsLeader() {
		if r.Header.Get(headerForwarded) != "" {
			writeError(w, n.notLeader())
			return
		}
		b, err := n.forward(ctx, http.MethodPost, "/raft/v1/join", body, "join")
		if err != nil {
			writeError(w, err)
			return
		}
		var resp joinResponse
		_ = json.Unmarshal(b, &resp) // an older leader answers {}
		if resp.ClusterID == "" {
			resp.ClusterID = n.ClusterID()
		}
		writeJSON(w, resp)
		return
	}
	if err := n.addVoter(ctx, req); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, joinResponse{ClusterID: n.ClusterID()})
}

// addVoter replicates the joiner's HTTP address, then adds it as a voter
// (replacing a stale entry with the same ID or address).
func (n *Node) addVoter(ctx context.Context, req joinRequest) error {
	if _, err := n.applyLocal(ctx, encodeMeta(metaCmd{op: opSetMeta, id: req.ID, httpAddr: req.HTTPAddr})); err != nil {
		return err
	}
	servers, err := n.configuration()
	if err != nil {
		return err
	}
	id, addr := raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr)
	for _, s := range servers {
		if s.ID != id && s.Address != addr {
			continue
		}
		if s.ID == id && s.Address == addr && s.Suffrage == raft.Voter {
			return nil // already a member
		}
		if err := n.waitFuture(ctx, n.raft.RemoveServer(s.ID, 0, 0)); err != nil {
			return err
		}
	}
	if err := n.waitFuture(ctx, n.raft.AddVoter(id, addr, 0, 0)); err != nil {
		return err
	}
	n.logger.Info("Member joined", "member", req.ID, "raftAddr", req.RaftAddr, "httpAddr", req.HTTPAddr)
	return nil
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req idRequest
	body, err := decodeJSONBody(w, r, &req)
	if err == nil && req.ID == "" {
		err = fmt.Errorf("%w: remove needs id", ErrBadRequest)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if n.forwardIfFollower(w, r, "/raft/v1/remove", body, "remove") {
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := n.removeLocal(ctx, req.ID); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req idRequest
	body, err := decodeJSONBody(w, r, &req)
	if err != nil {
		writeError(w, err)
		return
	}
	if n.forwardIfFollower(w, r, "/raft/v1/transfer", body, "transfer") {
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := n.transferLocal(ctx, req.ID); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (n *Node) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, n.Status())
}

// forward sends a request to the leader's HTTP endpoint.
func (n *Node) forward(ctx context.Context, method, path string, body []byte, op string) ([]byte, error) {
	base, err := n.leaderHTTP()
	if err != nil {
		return nil, err
	}
	n.metrics.forwarded.WithLabelValues(op).Inc()
	return n.do(ctx, method, base+path, body, true)
}

// do performs one request to a peer. A failure to connect is reported as
// ErrNoLeader (retryable: nothing was sent); other transport failures leave
// the outcome unknown and are returned as they are.
// forwarded marks the request so a receiver that is not the leader answers
// NotLeader instead of forwarding again.
func (n *Node) do(ctx context.Context, method, url string, body []byte, forwarded bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if forwarded {
		req.Header.Set(headerForwarded, n.cfg.NodeID)
	}
	if dl, ok := ctx.Deadline(); ok {
		req.Header.Set(headerTimeout, strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return nil, fmt.Errorf("%w: %s unreachable: %w", ErrNoLeader, url, err)
		}
		return nil, fmt.Errorf("request %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("read response %s: %w", url, err)
	}
	if resp.StatusCode == http.StatusOK {
		return b, nil
	}
	var er errorResponse
	if err := json.Unmarshal(b, &er); err != nil || er.Code == codeOK {
		return nil, fmt.Errorf("request %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(b[:min(len(b), 200)])))
	}
	return nil, codeToError(er.Code, er.Error, er.Leader)
}

func (n *Node) remoteReadIndex(ctx context.Context) (uint64, error) {
	b, err := n.forward(ctx, http.MethodGet, "/raft/v1/read-index", nil, "read-index")
	if err != nil {
		return 0, err
	}
	var resp readIndexResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return 0, fmt.Errorf("read-index response: %w", err)
	}
	return resp.Index, nil
}

// Join asks the member at joinURL (a peer's HTTP base URL) to add this node
// as a voter; a follower forwards to the leader. It retries until it
// succeeds or ctx is done. It is a no-op when the local configuration
// already has this node at its current raft address.
//
// The request names the node's ClusterID, if known: a member of another
// cluster refuses with ErrWrongCluster. When this node's ClusterID is
// unknown, it takes the one the member answers (none from older peers).
func (n *Node) Join(ctx context.Context, joinURL string) error {
	if s, ok := n.configServer(n.cfg.NodeID); ok && s.Address == n.trans.LocalAddr() {
		n.clearRejoinMarker()
		return nil
	}
	body := mustJSON(joinRequest{ID: n.cfg.NodeID, RaftAddr: string(n.trans.LocalAddr()), HTTPAddr: n.cfg.HTTPAddr, ClusterID: n.ClusterID()})
	url := strings.TrimSuffix(joinURL, "/") + "/raft/v1/join"
	wait := 50 * time.Millisecond
	for {
		if n.isClosing() {
			return ErrShutdown
		}
		b, err := n.do(ctx, http.MethodPost, url, body, false)
		if err == nil {
			var resp joinResponse
			_ = json.Unmarshal(b, &resp) // older peers answer {}
			if resp.ClusterID != "" && n.ClusterID() == "" {
				n.SetClusterID(resp.ClusterID)
			}
			n.logger.Info("Joined cluster", "via", joinURL, "cluster", resp.ClusterID)
			n.clearRejoinMarker()
			return nil
		}
		if errors.Is(err, ErrBadRequest) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrWrongCluster) {
			return fmt.Errorf("raftnode: join via %s: %w", joinURL, err)
		}
		n.logger.Debug("Join attempt failed", "via", joinURL, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("raftnode: join via %s: %w (%w)", joinURL, err, ctx.Err())
		case <-n.ctx.Done():
			t.Stop()
			return ErrShutdown
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}

// PeerStatus asks the member at memberURL (its HTTP base URL) for its
// Status, once: the cluster it belongs to and its members. A member that
// cannot be dialled is reported as ErrNoLeader.
func (n *Node) PeerStatus(ctx context.Context, memberURL string) (Status, error) {
	var st Status
	b, err := n.do(ctx, http.MethodGet, strings.TrimSuffix(memberURL, "/")+"/raft/v1/status", nil, false)
	if err != nil {
		return st, fmt.Errorf("raftnode: status of %s: %w", memberURL, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("raftnode: status of %s: %w", memberURL, err)
	}
	return st, nil
}

// clearRejoinMarker removes the mark Wipe left once the node is a member
// again (rejoin.go).
func (n *Node) clearRejoinMarker() {
	if err := os.Remove(filepath.Join(n.cfg.Dir, RejoinMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.logger.Warn("Removing rejoin marker failed", "error", err)
	}
}

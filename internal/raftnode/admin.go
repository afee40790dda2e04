package raftnode

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// memberRequest is the body of the admin membership calls.
type memberRequest struct {
	ID string `json:"id"`
}

// AdminHandler serves the operator's membership calls, for the app to mount
// behind its admin authentication:
//
//	POST {prefix}remove   {"id": "r3"}  remove a member (any node; forwarded to the leader)
//	POST {prefix}transfer {"id": "r2"}  move leadership ("" = any other voter)
//
// Peer-to-peer calls (join, apply, read-index) stay on Handler, which requires
// a member's certificate.
func (n *Node) AdminHandler(prefix string) http.Handler {
	mux := http.NewServeMux()
	call := func(op func(ctx context.Context, id string) error, needID bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req memberRequest
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil || (needID && req.ID == "") {
				writeError(w, ErrBadRequest)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			defer cancel()
			if err := op(ctx, req.ID); err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, n.Status())
		}
	}
	mux.HandleFunc("POST "+prefix+"remove", call(n.Remove, true))
	mux.HandleFunc("POST "+prefix+"transfer", call(n.TransferLeadership, false))
	return mux
}

package faultnet

import "errors"

// ErrStarted is returned by Run when the proxy has already been run. A proxy
// closes its sockets when Run returns, so it cannot serve again.
var ErrStarted = errors.New("faultnet: proxy already started")

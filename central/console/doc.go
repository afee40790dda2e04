// Package console is central's web console: server-rendered html/template
// pages (overview, devices, device detail with revision diff, events) with a
// little plain JS and CSS embedded in the binary. It depends on central only
// through Source, which central implements and passes in.
package console

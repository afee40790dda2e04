// Package agent is the edgesync endpoint agent (DESIGN.md §1, §2 flow 1): it
// enrolls with a site using a join token, collects inventory on the
// configured interval, keeps every record in an on-disk spool until a relay
// acknowledges it, and fails over between the site's relays. Simulate drives
// many simulated agents against a site for system tests and benchmarks.
//
// State directory layout:
//
//	device_id        32 lowercase hex characters, created once (ResetID renews it)
//	identity.json    device token and site, 0600
//	ca.pem           the site CA, pinned from the join token on first contact
//	next_seq         the next record sequence number
//	spool/<seq>.<kind>.json   one unacknowledged record per file
//
// Every file is written to a temporary name, fsynced and renamed, and the
// directory is fsynced, so a crash leaves either the old or the new file.
package agent

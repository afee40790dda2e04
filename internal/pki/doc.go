// Package pki manages the edgesync certificate authority: it creates the CA, issues leaf
// certificates for central and relay nodes, loads them back as TLS material and builds the TLS
// configurations used by the relay↔central link, the Raft transport and agents that only know the
// CA fingerprint from their join token.
//
// Identity travels in the certificate: the role ("central" or "relay") is the Subject OU, the node
// name is the CN and a relay's site is a URI SAN of the form edgesync://site/<site>.
package pki

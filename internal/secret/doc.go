// Package secret creates random tokens and keeps them in files that only
// their owner can read: the site join token and the admin tokens written at
// bootstrap.
package secret

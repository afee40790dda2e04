// Package websession signs administrators in to the HTML pages (central's
// console, a relay's status page) with the admin token: the token is checked
// once, then a random session ID travels in an HttpOnly, Secure,
// SameSite=Strict cookie, and every POST carries the session's CSRF token.
// Sessions live in memory on the node that issued them.
package websession

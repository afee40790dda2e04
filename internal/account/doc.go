// Package account holds what central needs to know about administrators as
// people, independent of storage: password hashing (argon2id with a
// per-account salt) and the password policy, the roles and the permissions
// they grant (system-admin, admin-no-oplog, site-operator scoped to sites,
// viewer), the sign-in rate limiter with lock-out, and the ISM CloudOne
// administrator-account CSV (manual 004, §11-12-9).
//
// Nothing here logs a password or a hash. Central stores accounts in its
// replicated state (central/accounts.go); this package never touches Raft.
package account

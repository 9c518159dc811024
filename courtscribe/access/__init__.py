"""Who may do what: scoped tokens (scopes, tokens), their checks on every endpoint (guard) and the
hash-chained audit log of what they did (audit)."""

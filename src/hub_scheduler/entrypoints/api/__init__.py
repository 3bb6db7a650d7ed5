"""The admin API: a Litestar router a host app mounts, and a standalone app built from it."""

"""Running the stack: the process supervisor of `tracker up`, the embedded PostgreSQL and
Redis, and the broker probes the web and the CLI read (queue lengths, worker pings)."""

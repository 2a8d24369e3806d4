"""The `tracker` command: `main` builds the app from one module per command group; `util`
holds what they share (connections, tables, errors and exit codes)."""

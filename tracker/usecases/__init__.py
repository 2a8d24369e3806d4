"""What a person asks for, written once for the web pages, the API and the CLI: feed and model
administration, subscriptions, review decisions, accounts, backups. Each checks its input,
writes through storage with its audit row, and reports what happened; the callers only read
arguments and render."""

#!/bin/sh
# Random secrets for compose.yaml under deploy/secrets/ (git-ignored). Existing files are kept,
# so running it again never changes a password PostgreSQL already uses.
set -eu
dir="$(dirname "$0")/secrets"
umask 077
mkdir -p "$dir"
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(36))'; }
[ -s "$dir/postgres_password" ] || random >"$dir/postgres_password"
[ -s "$dir/database_url" ] ||
  printf 'postgresql://tracker:%s@db:5432/tracker\n' "$(cat "$dir/postgres_password")" >"$dir/database_url"
[ -s "$dir/secret_key" ] || random >"$dir/secret_key"
[ -s "$dir/flower_basic_auth" ] || printf 'admin:%s\n' "$(random)" >"$dir/flower_basic_auth"
echo "secrets in $dir"

#!/bin/sh
# Random secrets for compose.yaml under deploy/secrets/ (git-ignored). Existing files are kept,
# so running it again never changes a password PostgreSQL already uses.
#
# Compose without Swarm bind-mounts each secret file as it is on the host, and the tracker runs
# as uid 10001 in its containers, so the files are world-readable (0644) while the directory is
# 0700: other users of the host cannot reach them, the containers can.
set -eu
dir="$(dirname "$0")/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(36))'; }
[ -s "$dir/postgres_password" ] || random >"$dir/postgres_password"
[ -s "$dir/database_url" ] ||
  printf 'postgresql://tracker:%s@db:5432/tracker\n' "$(cat "$dir/postgres_password")" >"$dir/database_url"
[ -s "$dir/secret_key" ] || random >"$dir/secret_key"
[ -s "$dir/flower_basic_auth" ] || printf 'admin:%s\n' "$(random)" >"$dir/flower_basic_auth"
[ -s "$dir/metrics_token" ] || random >"$dir/metrics_token"
chmod 0644 "$dir"/postgres_password "$dir"/database_url "$dir"/secret_key "$dir"/flower_basic_auth \
  "$dir"/metrics_token
echo "secrets in $dir"

#!/usr/bin/env bash
# Writes the passwords compose.yaml needs into .env beside it (or the file
# given), made here from the kernel's random source: RABBITMQ_PASSWORD
# (the broker's wwnode user), REDIS_PASSWORD and DASHBOARD_TOKEN.  A value
# already in the file is kept, so running it again changes nothing; the
# file is readable by its owner only.  Other settings for the compose
# file (ports, WA_URL) may be added to the same file by hand.
#
#   deploy/compose/make-secrets.sh [FILE]
set -euo pipefail
file=${1:-"$(dirname "$0")/.env"}

umask 077
touch "$file"
chmod 600 "$file"
random_hex() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }  # 48 hex digits: safe in a URL as it is
for name in RABBITMQ_PASSWORD REDIS_PASSWORD DASHBOARD_TOKEN; do
  if ! grep -q "^$name=." "$file"; then
    printf '%s=%s\n' "$name" "$(random_hex)" >>"$file"
  fi
done
echo "make-secrets: passwords in $file (the dashboard's token is DASHBOARD_TOKEN there)"

#!/usr/bin/env bash
# Runs the README's curl walk-through against a running server and checks every answer.
# Usage: scripts/walkthrough.sh [base-url] [outbox-dir]   (default http://127.0.0.1:8080)
# With the server's outbox directory, it also resets the password through the emailed link.
set -euo pipefail
BASE=${1:-http://127.0.0.1:8080}
OUTBOX=${2:-}
EMAIL="walkthrough-$(date +%s%N)@example.com"
PASSWORD='correct horse battery staple'

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
expect() { # expect STATUS METHOD URL [curl args...] ; prints the body
  local status=$1; shift
  local out code
  out=$(curl -s -w '\n%{http_code}' -X "$@")
  code=${out##*$'\n'}
  if [ "$code" != "$status" ]; then
    echo "FAILED: $2 answered $code, expected $status: ${out%$'\n'*}" >&2
    exit 1
  fi
  printf '%s' "${out%$'\n'*}"
}

expect 201 POST "$BASE/auth/register" -H 'Content-Type: application/json' \
  -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\"}" >/dev/null
echo "registered $EMAIL"

LOGIN=$(expect 200 POST "$BASE/auth/jwt/login" -d "username=$EMAIL" -d "password=$PASSWORD")
ACCESS=$(field access_token <<<"$LOGIN")
REFRESH=$(field refresh_token <<<"$LOGIN")
echo "logged in: token_type $(field token_type <<<"$LOGIN"), expires_in $(field expires_in <<<"$LOGIN")"

ME=$(expect 200 GET "$BASE/users/me" -H "Authorization: Bearer $ACCESS")
[ "$(field email <<<"$ME")" = "$EMAIL" ] || { echo "FAILED: /users/me is not $EMAIL" >&2; exit 1; }
echo "/users/me is $EMAIL"

ROTATED=$(expect 200 POST "$BASE/auth/jwt/refresh" -H 'Content-Type: application/json' \
  -d "{\"refresh_token\": \"$REFRESH\"}")
NEW_REFRESH=$(field refresh_token <<<"$ROTATED")
[ "$NEW_REFRESH" != "$REFRESH" ] || { echo "FAILED: refresh token not rotated" >&2; exit 1; }
ACCESS=$(field access_token <<<"$ROTATED")
echo "refreshed: new access token and a new refresh token"

expect 204 POST "$BASE/auth/jwt/logout" -H "Authorization: Bearer $ACCESS" >/dev/null
expect 401 GET "$BASE/users/me" -H "Authorization: Bearer $ACCESS" >/dev/null
expect 401 POST "$BASE/auth/jwt/refresh" -H 'Content-Type: application/json' \
  -d "{\"refresh_token\": \"$NEW_REFRESH\"}" >/dev/null
echo "logged out: the session's tokens are refused"

if [ -n "$OUTBOX" ]; then
  expect 202 POST "$BASE/auth/forgot-password" -H 'Content-Type: application/json' \
    -d "{\"email\": \"$EMAIL\"}" >/dev/null
  MESSAGE=""
  for _ in $(seq 1 100); do
    MESSAGE=$(grep -l "^To: $EMAIL" "$OUTBOX"/*.eml 2>/dev/null | head -n 1 || true)
    [ -n "$MESSAGE" ] && break
    sleep 0.1
  done
  [ -n "$MESSAGE" ] || { echo "FAILED: no reset email for $EMAIL in $OUTBOX" >&2; exit 1; }
  TOKEN=$(python3 - "$MESSAGE" <<'PY'
import email, re, sys
message = email.message_from_binary_file(open(sys.argv[1], "rb"))
text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
print(re.search(r"/reset-password\?token=([A-Za-z0-9_-]{43})", text.get_payload(decode=True).decode()).group(1))
PY
)
  echo "reset email written to $MESSAGE"
  NEW_PASSWORD='another horse battery staple'
  expect 200 POST "$BASE/auth/reset-password" -H 'Content-Type: application/json' \
    -d "{\"token\": \"$TOKEN\", \"password\": \"$NEW_PASSWORD\"}" >/dev/null
  expect 400 POST "$BASE/auth/reset-password" -H 'Content-Type: application/json' \
    -d "{\"token\": \"$TOKEN\", \"password\": \"$NEW_PASSWORD\"}" >/dev/null
  expect 400 POST "$BASE/auth/jwt/login" -d "username=$EMAIL" -d "password=$PASSWORD" >/dev/null
  expect 200 POST "$BASE/auth/jwt/login" -d "username=$EMAIL" -d "password=$NEW_PASSWORD" >/dev/null
  echo "password reset through the emailed link: the link works once, the new password logs in"
fi
echo "walk-through passed"

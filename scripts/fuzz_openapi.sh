#!/usr/bin/env bash
# Fuzzes the JSON API against its own OpenAPI document with schemathesis. Any 5xx is a bug.
#
# Usage: scripts/fuzz_openapi.sh [--release] [extra schemathesis arguments...]
#
# Builds the binary (unless GATEHOUSE_BIN names one) and serves it on a fresh temporary SQLite
# database with RATE_LIMIT=off and COOKIE_SECURE=false. Then runs schemathesis as a new
# superuser (made with `gatehouse create-superuser`: the deepest reach) over every operation,
# except those that can end the caller's own session: each of these gets a run and a new
# account of its own afterwards (the logouts as a user registered through the API). At the
# end it prints the server's own count of answers by status class, and every 5xx with the
# errors the server logged; it fails if there was any (or if a schemathesis check failed).
#
# Environment:
#   FUZZ_EXAMPLES  examples per operation and phase (150: about 1.5 minutes on 2 cores)
#   FUZZ_CHECKS    not_a_server_error; `all` also checks conformance with the document
#   FUZZ_SEED      random; set it to repeat a run
#   FUZZ_KEEP      set: keep the temporary directory (the server's log, the database, and
#                  schemathesis' cache for `st replay`)
#   FUZZ_PORT (18126), FUZZ_WORKERS (2), GATEHOUSE_BIN
#   FUZZ_VENV      target/fuzz-venv: where schemathesis is installed from PyPI unless it is
#                  on PATH
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
if [[ ${1:-} == --release ]]; then
  profile=release
  shift
fi
port=${FUZZ_PORT:-18126}
examples=${FUZZ_EXAMPLES:-150}
workers=${FUZZ_WORKERS:-2}
checks=${FUZZ_CHECKS:-not_a_server_error}
base="http://127.0.0.1:$port"

if [[ -n ${GATEHOUSE_BIN:-} ]]; then
  bin=$(realpath "$GATEHOUSE_BIN")
else
  cargo build --quiet --bin gatehouse $([[ $profile == release ]] && echo --release)
  bin=$(realpath "target/$profile/gatehouse")
fi

if command -v schemathesis >/dev/null; then
  schemathesis=schemathesis
else
  venv=${FUZZ_VENV:-target/fuzz-venv}
  if [[ ! -x $venv/bin/schemathesis ]]; then
    echo "installing schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
  fi
  schemathesis=$(realpath "$venv/bin/schemathesis")
fi

work=$(mktemp -d)
server=
cleanup() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [[ -n ${FUZZ_KEEP:-} ]]; then
    echo "kept $work (server.log, the database)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# The server runs in the temporary directory so that no .env file is picked up.
export DATABASE_URL="$work/gatehouse.db" DATA_DIR="$work" BIND_ADDR="127.0.0.1:$port" \
  RATE_LIMIT=off COOKIE_SECURE=false ARGON2_MEMORY_KIB=8192 ARGON2_ITERATIONS=1 \
  RUST_LOG=${RUST_LOG:-warn,actix_web::middleware::logger=info}
password='fuzzing is fun, 4 sure!'

(cd "$work" && "$bin" migrate >/dev/null)
(cd "$work" && exec "$bin" serve >"$work/server.log" 2>&1) &
server=$!
for _ in $(seq 100); do
  curl -sf "$base/health" >/dev/null && break
  sleep 0.1
done
if ! curl -sf "$base/health" >/dev/null; then
  cat "$work/server.log"
  echo "the server did not start" >&2
  exit 1
fi

# A new account for each run, since the fuzzer deletes and renames the accounts it finds.
new_account_token() { # new_account_token superuser|user
  local email
  email="$1-$(date +%s%N)@fuzz.example.com"
  if [[ $1 == superuser ]]; then
    (cd "$work" && printf '%s\n' "$password" |
      "$bin" create-superuser --email "$email" --password-stdin >/dev/null)
  else
    curl -sf "$base/auth/register" -H 'Content-Type: application/json' \
      -d "{\"email\": \"$email\", \"password\": \"$password\"}" >/dev/null
  fi
  curl -sf "$base/auth/jwt/login" --data-urlencode "username=$email" \
    --data-urlencode "password=$password" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

seed=${FUZZ_SEED:-$RANDOM}
echo "== schemathesis $("$schemathesis" --version | awk '{print $NF}'), seed $seed"
status=0
fuzz() { # fuzz superuser|user OPTIONS...: one run, as a new account
  local token
  token=$(new_account_token "$1") || { echo "cannot make a $1" >&2; exit 1; }
  shift
  # From the temporary directory, which receives schemathesis' cache (`st replay` reads it).
  (cd "$work" && "$schemathesis" run "$base/openapi.json" --checks "$checks" \
    --max-examples "$examples" --workers "$workers" --seed "$seed" \
    --generation-database none --request-timeout 10 --no-color \
    -H "Authorization: Bearer $token" "$@" "${extra[@]}") || status=$?
}
extra=("$@")
# Operations that can end the caller's own session (the fuzzer finds the caller's ids through
# the links it infers, e.g. from GET /users/me): each gets its own run and its own token, after
# the rest, so that no revoked token blinds the other runs.
ending=(logout cookie_logout end_my_session end_user_sessions update_user)
started=$(date +%s)
echo "== every other operation, as a superuser"
fuzz superuser $(printf -- '--exclude-operation-id %s ' "${ending[@]}")
for operation in "${ending[@]}"; do
  who=superuser
  [[ $operation == *logout ]] && who=user
  echo "== $operation, as a $who"
  fuzz "$who" --include-operation-id "$operation"
done
elapsed=$(($(date +%s) - started))

echo "== the server's answers in ${elapsed}s of fuzzing"
python3 - "$work/server.log" <<'SUMMARY' || status=1
import collections, re, sys

# The access log: `peer "METHOD /path" status bytes time`.
answer = re.compile(r'"([A-Z]+) (\S*)" (\d{3}) ')
classes, errors = collections.Counter(), collections.Counter()
logged = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    if (found := answer.search(line)):
        method, path, status = found.groups()
        classes[status[0] + "xx"] += 1
        if status.startswith("5"):
            errors[f"{status} {method} {path}"] += 1
    elif " ERROR " in line or "panicked" in line:
        logged[line.split("] ", 1)[-1].strip()] += 1
for status_class, count in sorted(classes.items()):
    print(f"  {status_class}: {count}")
if errors:
    print("== 5xx answers (count, status, method, path):")
    for error, count in errors.most_common():
        print(f"  {count:5} {error}")
    print("== errors the server logged:")
    for message, count in logged.most_common(20):
        print(f"  {count:5} {message}")
    sys.exit(1)
print("== no 5xx answers")
SUMMARY
exit "$status"

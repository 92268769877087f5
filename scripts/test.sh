#!/usr/bin/env bash
# The one test command: installs what is missing (on Debian, as root), then
# runs formatting, lints (Rust and the shell scripts), the Rust tests, the
# Node interop tests with the official JavaScript clients and the browser
# tests in headless Chromium.
# Every step runs even when an earlier one failed; the summary says which
# failed and the exit code is non-zero if any did.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export BIN_DIR=${BIN_DIR:-$TARGET_DIR/debug}

log() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------- tools
missing=()
command -v cargo >/dev/null || missing+=(cargo)
command -v redis-server >/dev/null || missing+=(redis-server)
# redis-cli builds the private Redis Clusters of the cluster tests.
command -v redis-cli >/dev/null || missing+=(redis-tools)
# ss counts a server's TCP segments (the load generator's tests).
command -v ss >/dev/null || missing+=(iproute2)
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# The scripts themselves are linted with shellcheck.
command -v shellcheck >/dev/null || missing+=(shellcheck)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    packages=()
    for tool in "${missing[@]}"; do
      case $tool in
        cargo) ;;
        *) packages+=("$tool") ;;
      esac
    done
    if [ ${#packages[@]} -gt 0 ]; then
      log "installing ${packages[*]} with apt-get"
      export DEBIAN_FRONTEND=noninteractive
      if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }; then
        echo "apt-get install ${packages[*]} failed" >&2
        exit 2
      fi
    fi
  fi
  for tool in "${missing[@]}"; do
    case $tool in
      cargo) command -v cargo >/dev/null || { echo "Rust is missing: install it with rustup (https://rustup.rs), then re-run." >&2; exit 2; } ;;
      chromium) [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || { echo "Chromium is missing: install Debian's 'chromium' package (sudo apt-get install chromium) or set CHROMIUM_PATH." >&2; exit 2; } ;;
      redis-tools) command -v redis-cli >/dev/null || { echo "redis-cli is missing: install Debian's 'redis-tools' package (sudo apt-get install redis-tools) and re-run." >&2; exit 2; } ;;
      iproute2) command -v ss >/dev/null || { echo "ss is missing: install Debian's 'iproute2' package (sudo apt-get install iproute2) and re-run." >&2; exit 2; } ;;
      nodejs) command -v node >/dev/null || { echo "Node.js >= 20 is missing: install Debian's 'nodejs' and 'npm' packages." >&2; exit 2; } ;;
      *) command -v "$tool" >/dev/null || { echo "$tool is missing: install Debian's '$tool' package (sudo apt-get install $tool) and re-run." >&2; exit 2; } ;;
    esac
  done
fi

# ---------------------------------------------------------------- steps
results=()
failed=0
step() {
  local name=$1
  shift
  log "$name"
  local started=$SECONDS
  if "$@"; then
    results+=("PASS  $name ($((SECONDS - started)) s)")
  else
    results+=("FAIL  $name ($((SECONDS - started)) s)")
    failed=$((failed + 1))
  fi
}

node_deps() { (cd tests && npm ci --no-audit --no-fund --loglevel=error); }
node_tests() { (cd tests && npm run --silent test:node); }
browser_tests() { (cd tests && npm run --silent test:browser); }
# -x follows the scripts' `source` lines (paths given from the repository root).
shell_lint() { shellcheck -x scripts/*.sh scripts/lib/*.sh; }

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "shellcheck (scripts/)" shell_lint
step "cargo build (binaries for the Node and browser tests)" cargo build --workspace --bins
step "cargo test" cargo test --workspace
step "npm ci" node_deps
step "Node interop tests (ws, eventsource, socket.io-client)" node_tests
step "browser tests (headless Chromium)" browser_tests

log "summary"
printf '%s\n' "${results[@]}"
if [ "$failed" -gt 0 ]; then
  echo "$failed step(s) failed"
  exit 1
fi
echo "all steps passed"

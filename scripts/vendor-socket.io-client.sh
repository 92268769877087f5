#!/usr/bin/env bash
# Vendors the official Socket.IO browser client into web/rooms-chat/vendor/
# from the npm package pinned in tests/package-lock.json, so the rooms-chat page
# works offline and never loads code from a CDN.
#
# Usage: scripts/vendor-socket.io-client.sh
# Re-run it after bumping socket.io-client in tests/package.json and committing
# the new lock file; commit the files it writes.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PACKAGE_DIR=$ROOT/tests/node_modules/socket.io-client
VENDOR_DIR=$ROOT/web/rooms-chat/vendor

# The version the lock file pins is the one we ship: read it from the lock,
# not from whatever happens to be installed.
pinned=$(node -e '
  const lock = require(process.argv[1]);
  const entry = lock.packages && lock.packages["node_modules/socket.io-client"];
  if (!entry) { console.error("socket.io-client is not in tests/package-lock.json"); process.exit(1); }
  console.log(entry.version);
' "$ROOT/tests/package-lock.json")

installed() {
  node -p 'require(process.argv[1]).version' "$PACKAGE_DIR/package.json" 2>/dev/null || true
}

if [ "$(installed)" != "$pinned" ]; then
  echo "installing the pinned test dependencies (npm ci in tests/)" >&2
  (cd "$ROOT/tests" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ "$(installed)" != "$pinned" ]; then
  echo "tests/node_modules/socket.io-client is $(installed), expected $pinned" >&2
  exit 1
fi

mkdir -p "$VENDOR_DIR"
cp "$PACKAGE_DIR/dist/socket.io.min.js" "$VENDOR_DIR/socket.io.min.js"
cp "$PACKAGE_DIR/dist/socket.io.min.js.map" "$VENDOR_DIR/socket.io.min.js.map"
cp "$PACKAGE_DIR/LICENSE" "$VENDOR_DIR/LICENSE"

integrity=$(node -e '
  const lock = require(process.argv[1]);
  console.log(lock.packages["node_modules/socket.io-client"].integrity);
' "$ROOT/tests/package-lock.json")
sha256=$(sha256sum "$VENDOR_DIR/socket.io.min.js" | cut -d' ' -f1)

cat > "$VENDOR_DIR/VERSION" <<NOTE
socket.io-client $pinned (npm), MIT licence (see LICENSE)
files: dist/socket.io.min.js, dist/socket.io.min.js.map, LICENSE
npm integrity: $integrity
sha256 of socket.io.min.js: $sha256
written by scripts/vendor-socket.io-client.sh from tests/package-lock.json
NOTE

echo "vendored socket.io-client $pinned into ${VENDOR_DIR#"$ROOT"/}"

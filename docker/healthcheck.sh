#!/bin/bash
# Container health check without curl: asks the running app's /healthz on
# $PORT (or the app's default port) and succeeds on HTTP 200.
set -eu
port=${PORT:-}
if [ -z "$port" ]; then
  # PID 1 is the app; its name gives the default port of the contract.
  case $(cat /proc/1/comm 2>/dev/null) in
    ws-chat) port=8080 ;;
    sse-stocks) port=5000 ;;
    *) port=3000 ;;
  esac
fi
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
IFS=' ' read -r _ status _ <&3
[ "$status" = 200 ]

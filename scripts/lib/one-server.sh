# shellcheck shell=bash
# Sourced by the scripts that run one server at a time (churn.sh, ab.sh):
# a free port, and the stop of the server whose pid is in $server_pid
# (also on exit).

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap stop_server EXIT

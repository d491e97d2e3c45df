#!/bin/sh
# Starts or stops a throwaway Docker registry (Debian's docker-registry, the CNCF distribution
# registry) on 127.0.0.1 for lab checks: storage, config and log live in DIR.
#   labs/registry.sh start DIR PORT [USER PASSWORD]
#                                      start it and wait until it answers; with USER and
#                                      PASSWORD it lets in only that user (htpasswd Basic auth,
#                                      over plain HTTP, which loopback makes acceptable)
#   labs/registry.sh stop DIR          stop it
set -eu
cmd=$1 dir=$2
case "$cmd" in
start)
  port=$3
  mkdir -p "$dir/registry"
  auth=""
  if [ $# -ge 5 ]; then
    htpasswd -Bbn "$4" "$5" > "$dir/registry/htpasswd"
    auth="auth:
  htpasswd:
    realm: skiff-lab
    path: $dir/registry/htpasswd"
  fi
  cat > "$dir/registry/config.yml" <<CONF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/registry/storage
http:
  addr: 127.0.0.1:$port
$auth
CONF
  docker-registry serve "$dir/registry/config.yml" > "$dir/registry/log" 2>&1 &
  echo $! > "$dir/registry/pid"
  for _ in $(seq 100); do
    # 200, or 401 when it asks for a login: either way it answers.
    case "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")" in
    200 | 401) exit 0 ;;
    esac
    kill -0 "$(cat "$dir/registry/pid")" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/registry/log" >&2
  exit 1
  ;;
stop)
  if [ -f "$dir/registry/pid" ]; then
    kill "$(cat "$dir/registry/pid")" 2>/dev/null || true
  fi
  ;;
esac

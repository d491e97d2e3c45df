#!/bin/sh
# Starts or stops a throwaway Docker registry (Debian's docker-registry, the CNCF distribution
# registry) on 127.0.0.1 for lab checks: storage, config and log live in DIR.
#   labs/registry.sh start DIR PORT    start it and wait until it answers
#   labs/registry.sh stop DIR          stop it
set -eu
cmd=$1 dir=$2
case "$cmd" in
start)
  port=$3
  mkdir -p "$dir/registry"
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
CONF
  docker-registry serve "$dir/registry/config.yml" > "$dir/registry/log" 2>&1 &
  echo $! > "$dir/registry/pid"
  for _ in $(seq 100); do
    if curl -fs "http://127.0.0.1:$port/v2/" > /dev/null; then exit 0; fi
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

# Shared set-up for the end-to-end scenarios: a namespace topology (tools/topology) with real
# back ends, gateway-dataplane on the balancer's veth through net_af_packet, gatewayd, and
# helpers that talk to them as an operator would (gatewayctl) and as clients would (curl, wrk,
# gw-testclient). Everything a scenario starts is stopped by the EXIT trap, also on failure.
#
# Environment: GW_BUILD (build directory), GW_ROOT (source tree); both set by meson.
# GW_E2E_ENGINE: dpdk (default) or xdp. With xdp there is no gateway-dataplane: gatewayd attaches
# the XDP program to the balancer's veth itself, and start_dataplane/stop_dataplane only wait for
# the balancer's address (the kernel answers for it).
set -euo pipefail

if [[ $(id -u) != 0 ]]; then
  echo "skipped: end-to-end scenarios need root (network namespaces, DPDK)"
  exit 77
fi

GW_ROOT=${GW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
GW_BUILD=${GW_BUILD:-$GW_ROOT/build}
P=${GW_PREFIX:-e$(printf '%04x' $((RANDOM % 65536)))$$}
P=${P:0:12}
RUN=/run/gateway-topology/$P
CFG=$RUN.yaml
SOCK=$RUN/gatewayd.sock
DP_PID=
GWD_PID=
BG_PIDS=()
SCENARIO=$(basename "$0" .sh)
ENGINE=${GW_E2E_ENGINE:-dpdk}
[[ $ENGINE == xdp ]] && SCENARIO+=_xdp

log() { printf '[%s %s] %s\n' "$(date +%T)" "$SCENARIO" "$*"; }
fail() {
  log "FAIL: $*"
  dump_logs
  exit 1
}
dump_logs() {
  for f in "$RUN.dataplane.log" "$RUN.gatewayd.log"; do
    [[ -f $f ]] && { echo "--- $f (last 30 lines)"; tail -30 "$f"; }
  done
  return 0
}

teardown() {
  local rc=$?
  set +e
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  [[ -n $GWD_PID ]] && kill "$GWD_PID" 2>/dev/null
  [[ -n $DP_PID ]] && kill "$DP_PID" 2>/dev/null
  for pid in $GWD_PID $DP_PID; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  "$GW_ROOT/tools/topology" down -p "$P" >/dev/null 2>&1
  # engine xdp: a stopped (not shut down) gatewayd leaves its pins, by design.
  rm -rf "/sys/fs/bpf/gateway/$P"
  # The shared-memory object is on /dev/shm or, with backing auto, on a hugetlbfs mount.
  rm -f "/dev/shm/gateway.$P" $(awk -v f="gateway.$P" '$3 == "hugetlbfs" {print $2 "/" f}' \
    /proc/mounts) "$CFG" "$RUN".*.log
  rm -rf "/run/gateway-topology/$P"
  exit $rc
}
trap teardown EXIT

# on NS CMD...: runs CMD in one of the topology's namespaces.
on() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

setup_topology() {  # [BACKENDS]
  local n=${1:-3}
  "$GW_ROOT/tools/topology" up -p "$P" -n "$n" -b "$GW_BUILD" -e "$ENGINE" >/dev/null
  "$GW_ROOT/tools/topology" config -p "$P" -n "$n" -e "$ENGINE" >"$CFG"
  mkdir -p "$RUN"
  log "topology $P up with $n back ends"
}

start_dataplane() {
  if [[ $ENGINE == xdp ]]; then
    log "engine xdp: the data plane is gatewayd's XDP program"
    return 0
  fi
  # ip netns exec replaces itself with the program: $! is the data plane's own pid.
  ip netns exec "$P-lb" "$GW_BUILD/dataplane/gateway-dataplane" --config "$CFG" \
    >>"$RUN.dataplane.log" 2>&1 &
  DP_PID=$!
  # Up when the balancer answers ARP and ping for its own address.
  for _ in $(seq 100); do
    if on client ping -c1 -W1 -q 10.99.1.2 >/dev/null 2>&1; then
      log "gateway-dataplane running (pid $DP_PID)"
      return 0
    fi
    kill -0 "$DP_PID" 2>/dev/null || fail "gateway-dataplane exited"
    sleep 0.2
  done
  fail "gateway-dataplane did not answer ping on 10.99.1.2"
}

stop_dataplane() {  # [SIGNAL]
  [[ $ENGINE == xdp ]] && return 0
  kill -"${1:-TERM}" "$DP_PID"
  for _ in $(seq 100); do kill -0 "$DP_PID" 2>/dev/null || break; sleep 0.1; done
  DP_PID=
}

start_gatewayd() {
  if [[ $ENGINE == xdp ]]; then
    # The network namespace only: `ip netns exec` would also give it a mount namespace with a
    # fresh /sys, where its pins under /sys/fs/bpf would not outlive it.
    nsenter --net="/run/netns/$P-lb" "$GW_BUILD/ctl/gatewayd" --config "$CFG" --foreground \
      >>"$RUN.gatewayd.log" 2>&1 &
  else
    ip netns exec "$P-lb" "$GW_BUILD/ctl/gatewayd" --config "$CFG" --foreground \
      >>"$RUN.gatewayd.log" 2>&1 &
  fi
  GWD_PID=$!
  for _ in $(seq 100); do
    ctl status >/dev/null 2>&1 && { log "gatewayd running (pid $GWD_PID)"; return 0; }
    kill -0 "$GWD_PID" 2>/dev/null || fail "gatewayd exited"
    sleep 0.1
  done
  fail "gatewayd did not answer on $SOCK"
}

stop_gatewayd() {  # [SIGNAL]
  kill -"${1:-TERM}" "$GWD_PID"
  for _ in $(seq 100); do kill -0 "$GWD_PID" 2>/dev/null || break; sleep 0.1; done
  GWD_PID=
}

ctl() { on lb "$GW_BUILD/ctl/gatewayctl" --socket "$SOCK" "$@"; }

# Engine xdp: what the kernel holds for the instance, read from its pins with bpftool, so a
# scenario can tell what a restart or an upgrade replaced (the program) from what it must keep
# (the link on lb0 and every map: connections, sessions, snapshots, counters).
XDP_PIN=/sys/fs/bpf/gateway/$P
xdp_link_id() { bpftool -j link show pinned "$XDP_PIN/link-lb0" | jq .id; }
xdp_link_prog() { bpftool -j link show pinned "$XDP_PIN/link-lb0" | jq .prog_id; }
# The program the interface runs, as the kernel reports it for lb0 (0: none).
xdp_lb0_prog() { on lb ip -j -d link show dev lb0 | jq '.[0].xdp.prog.id // 0'; }
xdp_prog_tag() { bpftool -j prog show id "$1" | jq -r .tag; }
xdp_map_ids() {  # "name=id ..." of every pinned map
  local f ids=()
  for f in "$XDP_PIN"/gw_*; do
    ids+=("$(basename "$f")=$(bpftool -j map show pinned "$f" | jq .id)")
  done
  echo "${ids[*]}"
}
# xdp_prog_on_pinned_maps PROG: the pinned maps PROG does not use (empty when it runs on the
# instance's maps; a program loaded with maps of its own would list them all here).
xdp_prog_on_pinned_maps() {
  local f pinned=()
  for f in "$XDP_PIN"/gw_*; do pinned+=("$(bpftool -j map show pinned "$f" | jq .id)"); done
  bpftool -j prog show id "$1" |
    jq -r --argjson p "[$(IFS=,; echo "${pinned[*]}")]" '$p - .map_ids | map(tostring) | join(" ")'
}
# The program upgrade: another build of bpf/gateway.bpf.c put on the pinned link by
# bpf_link_update, with the pinned maps (tests/e2e/xdp_swap.cc); gatewayd keeps running.
xdp_swap_program() {
  "$GW_BUILD/tests/e2e/gw-e2e-xdp-swap" "$XDP_PIN" link-lb0 "$GW_BUILD/bpf/gateway_upgrade.bpf.o" ||
    fail "the program upgrade through the pinned link failed"
}

# host_field GROUP HOST JQ_PATH: a field of one host from `gatewayctl --json backends GROUP`.
host_field() {
  ctl --json backends "$1" | jq -r --arg h "$2" ".hosts[] | select(.name == \$h) | $3"
}

# The back end that answers one HTTP request through the VIP (curl from the client).
who_answers() { on client curl -s -m 3 http://10.99.0.10/ || echo "ERROR"; }

# wait_for SECONDS DESCRIPTION CMD...: polls CMD until it succeeds.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  while ((SECONDS < end)); do
    "$@" && return 0
    sleep 0.2
  done
  fail "timed out after ${secs}s waiting for: $what"
}

expect_eq() {  # ACTUAL EXPECTED DESCRIPTION
  [[ $1 == "$2" ]] || fail "$3: got '$1', expected '$2'"
  log "ok: $3 ($1)"
}

expect_ne() {  # ACTUAL UNEXPECTED DESCRIPTION
  [[ $1 != "$2" ]] || fail "$3: got '$1'"
  log "ok: $3 ($1)"
}

# Client addresses beyond 10.99.3.2, for scenarios that need several clients.
add_client_addresses() {  # FIRST LAST (host parts of 10.99.3.x)
  for i in $(seq "$1" "$2"); do on client ip addr add "10.99.3.$i/24" dev c0; done
}

# who_answers_from SRC: the back end answering a request sent from client address SRC.
who_answers_from() { on client curl -s -m 3 --interface "$1" http://10.99.0.10/ || echo "ERROR"; }

# streams_ok: the last wait_streams saw no error and exchanged data.
streams_ok() {
  [[ $STREAMS_RC == 0 ]] || fail "long-lived clients saw errors: $STREAMS"
  expect_eq "$(jq .errors <<<"$STREAMS")" 0 "errors seen by the long-lived clients"
  expect_gt "$(jq .exchanges <<<"$STREAMS")" 0 "messages exchanged on the long-lived connections"
}

expect_gt() {  # ACTUAL BOUND DESCRIPTION
  (($1 > $2)) || fail "$3: got $1, expected more than $2"
  log "ok: $3 ($1 > $2)"
}

# Long-lived connections from the client: start_streams NAME CONNECTIONS SECONDS [LIFETIME_S]
# (with LIFETIME_S each connection lasts a log-normal time of that median and is replaced by a
# new one: clients coming and going; see tools/testclient.cc). An answer later than
# STREAM_TIMEOUT_MS (2000) counts as an error.
start_streams() {
  local name=$1 n=$2 secs=$3 churn=()
  [[ -n ${4:-} ]] && churn=(--lifetime-s "$4")
  rm -f "$RUN.$name.ready"
  ip netns exec "$P-client" "$GW_BUILD/tools/gw-testclient" --target 10.99.0.10:9000 \
    --connections "$n" "${churn[@]}" --timeout-ms "${STREAM_TIMEOUT_MS:-2000}" \
    --interval-ms 200 --duration-s "$secs" --ready-file "$RUN.$name.ready" \
    >"$RUN.$name.json" 2>"$RUN.$name.err" &
  BG_PIDS+=($!)
  eval "STREAM_$name=$!"
  wait_for 10 "$n streams connected" test -f "$RUN.$name.ready"
}

# wait_streams NAME: waits for the client to finish (in this shell: not inside $(...)); its JSON
# summary is then in $STREAMS, its exit status in $STREAMS_RC.
wait_streams() {
  local pid_var=STREAM_$1
  STREAMS_RC=0
  wait "${!pid_var}" || STREAMS_RC=$?
  STREAMS=$(cat "$RUN.$1.json")
}

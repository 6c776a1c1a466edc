#!/usr/bin/env bash
# Scenario 2: wrk at a steady rate through the VIP while one host is drained and another is
# re-enabled: zero socket errors, zero non-2xx responses, and every host change is seen by the
# counts gatewayctl reports.
source "$(dirname "$0")/lib.sh"

setup_topology 3
start_dataplane
start_gatewayd
ctl disable webapp back_end_3 >/dev/null

# Connection: close: every request is a new connection, scheduled by the current host modes.
ip netns exec "$P-client" wrk -t1 -c8 -d12s -H "Connection: close" http://10.99.0.10/ >"$RUN.wrk.txt" 2>&1 &
WRK=$!
BG_PIDS+=($WRK)
sleep 3
ctl drain webapp back_end_1 >/dev/null
sleep 3
ctl enable webapp back_end_3 >/dev/null
sleep 2
new3=$(host_field webapp back_end_3 .new_connections_per_s)
wait "$WRK" || fail "wrk failed: $(cat "$RUN.wrk.txt")"
cat "$RUN.wrk.txt"
requests=$(awk '/requests in/ {print $1}' "$RUN.wrk.txt")
expect_gt "${requests:-0}" 2000 "requests (each a new connection) served during the changes"
grep -q "Socket errors" "$RUN.wrk.txt" && fail "wrk saw socket errors"
grep -q "Non-2xx" "$RUN.wrk.txt" && fail "wrk saw non-2xx responses"
log "ok: no socket errors, no non-2xx responses"
expect_eq "$(host_field webapp back_end_1 .mode)" NO_NEW_SESSIONS "back_end_1 drained meanwhile"
log "back_end_3 new connections per second after re-enable: $new3"
[[ $new3 != 0 && $new3 != 0.0 ]] || fail "back_end_3 took no new connections after enable"
log "PASS"

#!/usr/bin/env bash
# The namespace demo (run by tools/demo). Uses the end-to-end harness for set-up and teardown.
source "$(dirname "$0")/../tests/e2e/lib.sh"
SCENARIO=demo
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1. Building the topology: a client, a router, the balancer and three back ends"
setup_topology 3
start_dataplane
start_gatewayd
ctl backends webapp

say "2. 45 clients keep connections open (one message every 200 ms), each for a few seconds"
echo "   (log-normal, median 6 s), then reconnect: 25 s of traffic let the data plane learn how"
echo "   long this service's connections last."
start_streams live 45 60 6
sleep 25
ctl backends webapp

say "3. Maintenance of back_end_1: gatewayctl drain webapp back_end_1 --wait"
echo "   New connections go to the other hosts; back_end_1's open connections keep flowing"
echo "   until their clients finish, and the command returns when none is left. The eta is"
echo "   the median of the estimate, p90 its 90th percentile (README, \"Reading the drain ETA\")."
for i in 1 2 3 4 5 6; do
  printf '   new request %d answered by %s\n' "$i" "$(who_answers)"
done
ctl drain webapp back_end_1 --wait --timeout 60s

wait_streams live
say "4. The long-lived clients report"
jq -c '{connections, exchanges, errors, hosts}' <<<"$STREAMS"
[[ $STREAMS_RC == 0 ]] && echo "   no connection broke, none changed host" ||
  echo "   SOME CONNECTIONS BROKE: see the per-connection report above"

say "5. back_end_1 is empty: disable it (it could now be rebooted), then bring it back"
ctl disable webapp back_end_1
ctl backends webapp
ctl enable webapp back_end_1
for i in 1 2 3 4 5 6; do
  printf '   new request %d answered by %s\n' "$i" "$(who_answers)"
done

say "6. Tearing everything down"

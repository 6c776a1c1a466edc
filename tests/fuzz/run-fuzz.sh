#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time. The seed corpus in the source tree is read-only
# input; new inputs go to a scratch directory in the build tree. Any crash, leak or sanitizer
# finding makes libFuzzer exit non-zero, which fails the test.
set -euo pipefail
exe=$1 seeds=$2 scratch=$3 seconds=$4
mkdir -p "$scratch"
exec "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  "$scratch" "$seeds"

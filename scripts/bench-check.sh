#!/usr/bin/env bash
# bench-check: `check` of a simulated WeChat account (BENCH_MESSAGES, default 1,000,000
# messages, with its media) against one `export --no-media` of it, in the same rounds
# (target: check takes no longer than the export), with peak RSS.
#
# Usage: scripts/bench-check.sh      Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3), BENCH_MESSAGES.
source "$(dirname "$0")/bench-lib.sh"

bench_init
N=${BENCH_MESSAGES:-1000000}
NOW=2025-06-01T00:00:00Z

note "simulating wechat: $N messages"
"$CHATVAULT" simulate wechat --out "$BENCH_DIR/src" --groups 20 --members 50 --messages "$N" \
    --seed 7 --now "$NOW" --no-media-files >/dev/null

# check exits 14 when something blocks, which is what it reports, not a failure.
CHECK_OK='"$@"; rc=$?; [ "$rc" -eq 0 ] || [ "$rc" -eq 14 ]'

for round in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    rm -rf "$BENCH_DIR/out" "$BENCH_DIR/out.sha256"
    warm "$BENCH_DIR/src"
    run export "$round" "$CHATVAULT" export "$BENCH_DIR/src" --out "$BENCH_DIR/out" --no-media \
        --fixed-time "$NOW"
    warm "$BENCH_DIR/src"
    run check "$round" bash -c "$CHECK_OK" _ "$CHATVAULT" check "$BENCH_DIR/src" --now "$NOW" \
        --dissolve-at 2025-06-03T00:00:00Z --bundle "$BENCH_DIR/out"
done

echo "| $N WeChat messages | time | peak RSS | vs \`export --no-media\` (same round) | target |"
echo "|---|---|---|---|---|"
echo "| \`export --no-media\` | $(fmt "$(med_secs export)") s | $(fmt "$(max_rss_mb export)" 1) MB | 1.00x | |"
r=$(ratio check export)
echo "| \`check --bundle\` (verifies the bundle too) | $(fmt "$(med_secs check)") s | $(fmt "$(max_rss_mb check)" 1) MB | $(fmt "$r")x | <= 1.0x: $(verdict "$r" "<=" 1.0) |"
bench_footer

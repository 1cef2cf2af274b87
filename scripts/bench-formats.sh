#!/usr/bin/env bash
# bench-formats: what the output formats cost. `export --no-media` of a simulated WeChat
# account (BENCH_MESSAGES, default 1,000,000 messages) with `--format csv` against
# `--format csv,html` (target <= 1.3x in the same rounds) and against every format, with
# peak RSS (target < 64 MB, and flat: BENCH_BIG_MESSAGES, default 4,000,000, unless
# BENCH_BIG=0).
#
# Usage: scripts/bench-formats.sh      Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3),
#        BENCH_MESSAGES, BENCH_BIG_MESSAGES, BENCH_BIG.
source "$(dirname "$0")/bench-lib.sh"

bench_init
N=${BENCH_MESSAGES:-1000000}
BIG_N=${BENCH_BIG_MESSAGES:-4000000}
NOW=2025-06-01T00:00:00Z

note "simulating wechat: $N messages"
"$CHATVAULT" simulate wechat --out "$BENCH_DIR/src" --groups 20 --members 50 --messages "$N" \
    --seed 7 --now "$NOW" --no-media-files >/dev/null

export_as() { # LABEL ROUND FORMATS SRC
    rm -rf "$BENCH_DIR/out" "$BENCH_DIR/out.sha256"
    warm "$4"
    run "$1" "$2" "$CHATVAULT" export "$4" --out "$BENCH_DIR/out" --no-media --format "$3" \
        --fixed-time "$NOW"
}

for round in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    export_as csv "$round" csv "$BENCH_DIR/src"
    export_as html "$round" csv,html "$BENCH_DIR/src"
    export_as all "$round" csv,jsonl,txt,html "$BENCH_DIR/src"
done
if [ "${BENCH_BIG:-1}" != 0 ]; then
    rm -rf "$BENCH_DIR/src"
    note "simulating wechat: $BIG_N messages"
    "$CHATVAULT" simulate wechat --out "$BENCH_DIR/big" --groups 20 --members 50 \
        --messages "$BIG_N" --seed 7 --now "$NOW" --no-media-files >/dev/null
    export_as big 1 csv,jsonl,txt,html "$BENCH_DIR/big"
fi

echo "| export --no-media, $N messages | time | peak RSS | vs \`--format csv\` (same round) | target |"
echo "|---|---|---|---|---|"
echo "| \`--format csv\` | $(fmt "$(med_secs csv)") s | $(fmt "$(max_rss_mb csv)" 1) MB | 1.00x | |"
r=$(ratio html csv)
echo "| \`--format csv,html\` | $(fmt "$(med_secs html)") s | $(fmt "$(max_rss_mb html)" 1) MB | $(fmt "$r")x | <= 1.3x: $(verdict "$r" "<=" 1.3) |"
r=$(ratio all csv)
echo "| \`--format csv,jsonl,txt,html\` | $(fmt "$(med_secs all)") s | $(fmt "$(max_rss_mb all)" 1) MB | $(fmt "$r")x | |"
if [ "${BENCH_BIG:-1}" != 0 ]; then
    echo "| every format, $BIG_N messages | $(fmt "$(med_secs big)") s | $(fmt "$(max_rss_mb big)" 1) MB | | < 64 MB, flat: $(verdict "$(max_rss_mb big)" "<" 64) |"
fi
bench_footer

#!/usr/bin/env bash
# bench-export: time of `chatvault export SRC --out OUT --no-media` on a simulated account of
# 1,000,000 group messages (20 groups, 50 members, no media files), per platform.
#   - WeChat against `sqlite3 -csv EnMicroMsg.db 'select * from message' > /dev/null`
#     (target: export/sqlite3 < 1.0);
#   - other platforms (arguments; default `wechat`): messages/s and ratio to the WeChat export
#     of the same round;
#   - `--anonymize --key-file K` (when `export --help` lists it) against the plain export
#     (target <= 1.5x);
#   - chatvault's peak RSS at 1M and at 4M messages (target < 64 MB, not growing).
#
# Usage: scripts/bench-export.sh [PLATFORM…]
# Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3), BENCH_MESSAGES (1000000),
#      BENCH_BIG_MESSAGES (4000000), BENCH_BIG=0 skips the 4M run.
# Prints a Markdown table on stdout (progress on stderr).
source "$(dirname "$0")/bench-lib.sh"

bench_init
need_tool sqlite3 "sudo apt-get install sqlite3"

N=${BENCH_MESSAGES:-1000000}
BIG_N=${BENCH_BIG_MESSAGES:-4000000}
BIG=${BENCH_BIG:-1}
[ $# -gt 0 ] || set -- wechat
PLATFORMS=(wechat)
for p in "$@"; do [ "$p" = wechat ] || PLATFORMS+=("$p"); done

supported=$("$CHATVAULT" simulate --help | sed -n 's/.*possible values: \([^]]*\)\].*/\1/p' | tr -d ',' | head -n1)
SKIPPED=()
OK=()
for p in "${PLATFORMS[@]}"; do
    if [[ " $supported " == *" $p "* ]]; then OK+=("$p"); else SKIPPED+=("$p"); fi
done
[[ " ${OK[*]} " == *" wechat "* ]] || die "this chatvault cannot simulate wechat (simulate supports: $supported)"
[ ${#SKIPPED[@]} -eq 0 ] || note "skipping ${SKIPPED[*]}: \`chatvault simulate\` supports only: $supported"

ANON=0
if "$CHATVAULT" export --help | grep -q -- '--anonymize'; then ANON=1; fi

# simulate_once PLATFORM DIR MESSAGES : reuse DIR when it was made with the same parameters.
simulate_once() {
    local p=$1 dir=$2 n=$3
    local params="$p $n 20 50 seed1 $("$CHATVAULT" --version 2>/dev/null)"
    if [ -f "$dir.params" ] && [ "$(cat "$dir.params")" = "$params" ]; then
        note "reusing $dir"
        return
    fi
    rm -rf "$dir" "$dir.params"
    note "simulating $p, $n messages → $dir"
    local t0=$EPOCHREALTIME
    "$CHATVAULT" simulate "$p" --out "$dir" --messages "$n" --groups 20 --members 50 \
        --no-media-files --seed 1 >/dev/null
    note "  simulated in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s, $(du -sh "$dir" | cut -f1)"
    echo "$params" >"$dir.params"
}

for p in "${OK[@]}"; do simulate_once "$p" "$BENCH_DIR/src-$p" "$N"; done
WX_DB="$BENCH_DIR/src-wechat/EnMicroMsg.db"
[ -f "$WX_DB" ] || die "no EnMicroMsg.db in the simulated WeChat source"
if [ "$ANON" = 1 ]; then
    rm -f "$BENCH_DIR/key"
    "$CHATVAULT" keygen "$BENCH_DIR/key" >/dev/null 2>&1 || die "\`chatvault keygen\` failed"
fi

export_run() { # LABEL ROUND PLATFORM [EXTRA ARGS…]
    local label=$1 round=$2 p=$3; shift 3
    local out="$BENCH_DIR/out-$label"
    rm -rf "$out" "$out.sha256" "$out.zip" "$out.zip.sha256"
    warm "$BENCH_DIR/src-$p"
    # (stdout to the log: the summary there gives the message count)
    # The CSV files alone, the like of sqlite3's dump (bench-formats.sh measures the others).
    RUN_STDOUT=log run "$label" "$round" "$CHATVAULT" export "$BENCH_DIR/src-$p" --out "$out" --no-media --format csv "$@"
    rm -rf "$out" "$out.sha256"
}

for r in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    for p in "${OK[@]}"; do export_run "export-$p" "$r" "$p"; done
    warm "$WX_DB"
    run sqlite3 "$r" sqlite3 -csv "$WX_DB" 'select * from message'
    if [ "$ANON" = 1 ]; then export_run export-wechat-anon "$r" wechat --anonymize --key-file "$BENCH_DIR/key"; fi
done

# messages exported, from the first round's summary line ("… N messages, …")
count() { run_log "$1" 1 | sed -n 's/.*: \([0-9][0-9]*\) messages.*/\1/p' | head -n1; }

BIG_RSS=nan BIG_T=nan
if [ "$BIG" != 0 ]; then
    sample_load
    simulate_once wechat "$BENCH_DIR/src-big" "$BIG_N"
    rm -rf "$BENCH_DIR/out-big" "$BENCH_DIR/out-big.sha256"
    warm "$BENCH_DIR/src-big"
    run export-big 1 "$CHATVAULT" export "$BENCH_DIR/src-big" --out "$BENCH_DIR/out-big" --no-media --format csv
    rm -rf "$BENCH_DIR/out-big" "$BENCH_DIR/out-big.sha256"
    BIG_RSS=$(med_rss_mb export-big)
    BIG_T=$(med_secs export-big)
    [ "$BENCH_OWN_DIR" = 1 ] && rm -rf "$BENCH_DIR/src-big" "$BENCH_DIR/src-big.params"
fi

# ---- table ----
wx_t=$(med_secs export-wechat)
wx_n=$(count export-wechat); wx_n=${wx_n:-$N}
echo
echo "#### export, $N messages, --no-media"
echo
echo "| measure | chatvault | compared with | ratio | target | |"
echo "|---|---|---|---|---|---|"
r=$(ratio export-wechat sqlite3)
echo "| wechat export (${wx_n} msgs) | $(fmt "$wx_t") s, $(fmt "$(awk -v n="$wx_n" -v t="$wx_t" 'BEGIN{print n/t/1000}')" 0)k msg/s | sqlite3 -csv \`select * from message\`: $(fmt "$(med_secs sqlite3)") s | $(fmt "$r")x | < 1.0 | $(verdict "$r" '<' 1.0) |"
for p in "${OK[@]}"; do
    [ "$p" = wechat ] && continue
    t=$(med_secs "export-$p"); n=$(count "export-$p"); n=${n:-$N}
    # messages/s of p over messages/s of wechat, same round
    rr=$(join <(sort -k1,1 "$BENCH_RES/export-$p.secs") <(sort -k1,1 "$BENCH_RES/export-wechat.secs") |
        awk -v n="$n" -v w="$wx_n" '{print (n/$2)/(w/$3)}' | _median)
    echo "| $p export (${n} msgs) | $(fmt "$t") s, $(fmt "$(awk -v n="$n" -v t="$t" 'BEGIN{print n/t/1000}')" 0)k msg/s | wechat export (msg/s) | $(fmt "$rr")x throughput | — | |"
done
for p in "${SKIPPED[@]}"; do
    echo "| $p export | not measured: \`simulate\` does not support $p | | | | |"
done
if [ "$ANON" = 1 ]; then
    r=$(ratio export-wechat-anon export-wechat)
    echo "| wechat export --anonymize | $(fmt "$(med_secs export-wechat-anon)") s | plain export | $(fmt "$r")x | <= 1.5 | $(verdict "$r" '<=' 1.5) |"
else
    echo "| wechat export --anonymize | not measured: \`export --help\` lists no --anonymize | | | | |"
fi
rss1=$(max_rss_mb export-wechat)
echo "| peak RSS, ${wx_n} msgs | $(fmt "$rss1" 1) MB (max of rounds) | | | < 64 MB | $(verdict "$rss1" '<' 64) |"
if [ "$BIG" != 0 ]; then
    g=$(awk -v a="$BIG_RSS" -v b="$rss1" 'BEGIN{print a/b}')
    echo "| peak RSS, $BIG_N msgs (1 run, $(fmt "$BIG_T" 1) s, $(fmt "$(awk -v n="$BIG_N" -v t="$BIG_T" 'BEGIN{print n/t/1000}')" 0)k msg/s) | $(fmt "$BIG_RSS" 1) MB | RSS at $N | $(fmt "$g")x | < 64 MB, <= 1.1x | $(awk -v a="$BIG_RSS" -v g="$g" 'BEGIN{print (a<64 && g<=1.1) ? "met" : "**MISSED**"}') |"
fi
echo
echo "_Per-round times (s): wechat export $(all_secs export-wechat); sqlite3 $(all_secs sqlite3)$([ "$ANON" = 1 ] && echo "; anonymized $(all_secs export-wechat-anon)")._"
cpu_note export-wechat sqlite3 $([ "$ANON" = 1 ] && echo export-wechat-anon) $([ "$BIG" != 0 ] && echo export-big)
bench_footer

#!/usr/bin/env bash
# bench-compare: this build against another (an earlier release, or the commit before a
# refactoring) in the same interleaved rounds, on the commands whose speed matters:
#   - `export --no-media` of a simulated WeChat account (BENCH_MESSAGES, default 1,000,000)
#     and of the same number of QQ, WeCom and DingTalk messages (BENCH_PLATFORMS);
#   - `export --zip` with media (BENCH_MEDIA_MESSAGES, default 100,000 messages);
#   - `verify` of that zip, `plan --hash` of its source and `hash` of its media tree.
# Each line gives both medians and the median of the same-round ratios (this / base):
# 1.00x means no change; the machine's drift cancels out within a round.
#
# Usage: CHATVAULT_BASE=/path/to/old/chatvault scripts/bench-compare.sh
# Env: CHATVAULT (this build), CHATVAULT_BASE (required), BENCH_DIR, BENCH_ROUNDS (3),
#      BENCH_MESSAGES, BENCH_MEDIA_MESSAGES, BENCH_PLATFORMS ("wechat qq wecom dingtalk").
# The sources are simulated once, with this build.
source "$(dirname "$0")/bench-lib.sh"

bench_init
BASE="${CHATVAULT_BASE:-}"
[ -n "$BASE" ] && [ -x "$BASE" ] || die "set CHATVAULT_BASE to the chatvault binary to compare with"
N=${BENCH_MESSAGES:-1000000}
MEDIA_N=${BENCH_MEDIA_MESSAGES:-100000}
read -r -a PLATFORMS <<<"${BENCH_PLATFORMS:-wechat qq wecom dingtalk}"
NOW=2025-06-01T00:00:00Z

for p in "${PLATFORMS[@]}"; do
    note "simulating $p: $N messages"
    "$CHATVAULT" simulate "$p" --out "$BENCH_DIR/src-$p" --groups 20 --members 50 \
        --messages "$N" --seed 7 --now "$NOW" --no-media-files >/dev/null
done
note "simulating wechat with media: $MEDIA_N messages"
"$CHATVAULT" simulate wechat --out "$BENCH_DIR/media-src" --groups 10 --members 50 \
    --messages "$MEDIA_N" --seed 7 --now "$NOW" >/dev/null

# both LABEL ROUND WARM ARGS… : run ARGS with this build and the base, in alternating order,
# after reading WARM into the page cache and removing earlier outputs.
both() {
    local label=$1 round=$2 warm_path=$3; shift 3
    local order=(new base)
    if (( round % 2 == 0 )); then order=(base new); fi
    for who in "${order[@]}"; do
        local bin=$CHATVAULT
        [ "$who" = base ] && bin=$BASE
        rm -rf "$BENCH_DIR/out" "$BENCH_DIR/out.zip" "$BENCH_DIR/out.zip.sha256" \
            "$BENCH_DIR/out.sha256" "$BENCH_DIR"/plan.*
        warm "$warm_path"
        run "$label.$who" "$round" "$bin" "$@"
    done
}

"$CHATVAULT" export "$BENCH_DIR/media-src" --out "$BENCH_DIR/verify" --zip --fixed-time "$NOW" >/dev/null
for round in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    for p in "${PLATFORMS[@]}"; do
        both "export-$p" "$round" "$BENCH_DIR/src-$p" \
            export "$BENCH_DIR/src-$p" --out "$BENCH_DIR/out" --no-media --fixed-time "$NOW"
    done
    both zip "$round" "$BENCH_DIR/media-src" \
        export "$BENCH_DIR/media-src" --out "$BENCH_DIR/out" --zip --fixed-time "$NOW"
    both verify "$round" "$BENCH_DIR/verify.zip" verify "$BENCH_DIR/verify.zip"
    both plan "$round" "$BENCH_DIR/media-src" \
        plan "$BENCH_DIR/media-src" --out "$BENCH_DIR/plan.json" --now "$NOW" --hash
    both hash "$round" "$BENCH_DIR/media-src" hash "$BENCH_DIR/media-src"
done

echo "| command | this build | base | this / base (same round) |"
echo "|---|---|---|---|"
line() {
    local label=$1 what=$2
    echo "| $what | $(fmt "$(med_secs "$label.new")") s | $(fmt "$(med_secs "$label.base")") s | $(fmt "$(ratio "$label.new" "$label.base")")x |"
}
for p in "${PLATFORMS[@]}"; do
    line "export-$p" "$p \`export --no-media\`, $N messages"
done
line zip "wechat \`export --zip\` with media, $MEDIA_N messages"
line verify "\`verify\` of that zip"
line plan "\`plan --hash\` of its source"
line hash "\`hash\` of its source tree"
bench_footer

#!/usr/bin/env bash
# bench-export: time of `chatvault export SRC --out OUT --no-media` on a simulated account of
# 1,000,000 group messages (20 groups, 50 members, no media files), per platform.
#   - WeChat against `sqlite3 -csv EnMicroMsg.db 'select * from message' > /dev/null`
#     (target: export/sqlite3 < 1.0);
#   - other platforms (arguments; default `wechat`): messages/s and ratio to the WeChat export
#     of the same round;
#   - `--anonymize --key-file K` (when `export --help` lists it) against the plain export
#     (target <= 1.5x);
#   - chatvault's peak RSS at 1M and at 4M messages, and anonymized (target < 64 MB, not growing);
#   - media: a WeChat account with BENCH_MEDIA_FILES (30,000) media files exported with its
#     media to a directory against `cp -r` of the source followed by `sync` (target <= 1.2x),
#     and with `--zip` against `zip -r -n <media exts>` of the finished payload (target
#     <= 1.0x); peak RSS there and at 4x as many files (BENCH_MEDIA_BIG=0 skips that).
#
# Usage: scripts/bench-export.sh [PLATFORM…]
# Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3), BENCH_MESSAGES (1000000),
#      BENCH_BIG_MESSAGES (4000000), BENCH_BIG=0 skips the 4M run, BENCH_MESSAGES_PART=0
#      skips the --no-media part, BENCH_MEDIA=0 the media part.
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

messages_part() {
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
if [ "$ANON" = 1 ]; then
    rss_anon=$(max_rss_mb export-wechat-anon)
    echo "| peak RSS, ${wx_n} msgs, --anonymize | $(fmt "$rss_anon" 1) MB (max of rounds) | | | < 64 MB | $(verdict "$rss_anon" '<' 64) |"
fi
if [ "$BIG" != 0 ]; then
    g=$(awk -v a="$BIG_RSS" -v b="$rss1" 'BEGIN{print a/b}')
    echo "| peak RSS, $BIG_N msgs (1 run, $(fmt "$BIG_T" 1) s, $(fmt "$(awk -v n="$BIG_N" -v t="$BIG_T" 'BEGIN{print n/t/1000}')" 0)k msg/s) | $(fmt "$BIG_RSS" 1) MB | RSS at $N | $(fmt "$g")x | < 64 MB, <= 1.1x | $(awk -v a="$BIG_RSS" -v g="$g" 'BEGIN{print (a<64 && g<=1.1) ? "met" : "**MISSED**"}') |"
fi
echo
echo "_Per-round times (s): wechat export $(all_secs export-wechat); sqlite3 $(all_secs sqlite3)$([ "$ANON" = 1 ] && echo "; anonymized $(all_secs export-wechat-anon)")._"
cpu_note export-wechat sqlite3 $([ "$ANON" = 1 ] && echo export-wechat-anon) $([ "$BIG" != 0 ] && echo export-big)
}

# ---- media ----
# media_source DIR FILES : a WeChat account with about FILES media files (reused when made
# with the same parameters). The simulated mix writes about 0.31 files per message (20 groups, no edge cases).
media_source() {
    local dir=$1 files=$2
    local msgs=$((files * 33 / 10))
    local params="media $files $msgs seed3 $("$CHATVAULT" --version 2>/dev/null)"
    if [ -f "$dir.params" ] && [ "$(cat "$dir.params")" = "$params" ]; then
        note "reusing $dir"
        return
    fi
    rm -rf "$dir" "$dir.params"
    note "simulating wechat with media, $msgs messages → $dir"
    "$CHATVAULT" simulate wechat --out "$dir" --messages "$msgs" --groups 20 --members 50 \
        --seed 3 --edge-rate 0 >/dev/null
    echo "$params" >"$dir.params"
}

MEDIA_EXTS=jpg:jpeg:png:gif:webp:heic:mp4:mov:m4a:mp3:amr:silk:aac:zip:7z:rar:gz:docx:xlsx:pptx:pdf:apk
media_part() {
    local files=${BENCH_MEDIA_FILES:-30000}
    local src="$BENCH_DIR/src-media"
    media_source "$src" "$files"
    local nfiles; nfiles=$(find "$src" -type f ! -name '*.db*' | wc -l)
    local size; size=$(du -sm "$src" | cut -f1)
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        sample_load
        rm -rf "$BENCH_DIR/cp"; sync; warm "$src"
        run cp-sync "$r" bash -c "cp -r '$src' '$BENCH_DIR/cp' && sync"
        rm -rf "$BENCH_DIR/cp"
        rm -rf "$BENCH_DIR/m-dir" "$BENCH_DIR/m-dir.sha256"; sync; warm "$src"
        RUN_STDOUT=log run media-dir "$r" "$CHATVAULT" export "$src" --out "$BENCH_DIR/m-dir" --format csv
        # zip -r of the finished payload, already-compressed media stored as export --zip does
        rm -f "$BENCH_DIR/m.zip"; sync
        warm "$BENCH_DIR/m-dir"
        run zip-n "$r" bash -c "cd '$BENCH_DIR' && zip -q -r -n '$MEDIA_EXTS' m.zip m-dir"
        rm -f "$BENCH_DIR/m.zip"
        rm -rf "$BENCH_DIR/m-dir" "$BENCH_DIR/m-dir.sha256"
        rm -f "$BENCH_DIR/m-zip.zip" "$BENCH_DIR/m-zip.zip.sha256"; sync; warm "$src"
        RUN_STDOUT=log run media-zip "$r" "$CHATVAULT" export "$src" --out "$BENCH_DIR/m-zip" --zip --format csv
        rm -f "$BENCH_DIR/m-zip.zip" "$BENCH_DIR/m-zip.zip.sha256"
    done
    local big_rss_dir=nan big_rss_zip=nan big_files=$((files * 4))
    if [ "${BENCH_MEDIA_BIG:-1}" != 0 ]; then
        local bsrc="$BENCH_DIR/src-media-big"
        media_source "$bsrc" "$big_files"
        big_files=$(find "$bsrc" -type f ! -name '*.db*' | wc -l)
        rm -rf "$BENCH_DIR/mb" "$BENCH_DIR/mb.sha256"
        run media-big-dir 1 "$CHATVAULT" export "$bsrc" --out "$BENCH_DIR/mb" --format csv
        rm -rf "$BENCH_DIR/mb" "$BENCH_DIR/mb.sha256"
        run media-big-zip 1 "$CHATVAULT" export "$bsrc" --out "$BENCH_DIR/mb" --zip --format csv
        rm -f "$BENCH_DIR/mb.zip" "$BENCH_DIR/mb.zip.sha256"
        big_rss_dir=$(max_rss_mb media-big-dir); big_rss_zip=$(max_rss_mb media-big-zip)
        [ "$BENCH_OWN_DIR" = 1 ] && rm -rf "$bsrc" "$bsrc.params"
    fi
    echo
    echo "#### export with media: $nfiles source files ($size MB), WeChat"
    echo
    echo "| measure | chatvault | compared with | ratio | target | |"
    echo "|---|---|---|---|---|---|"
    local r1; r1=$(ratio media-dir cp-sync)
    echo "| export to a directory | $(fmt "$(med_secs media-dir)") s, $(fmt "$(med_cpu media-dir)") s CPU | \`cp -r\` + \`sync\`: $(fmt "$(med_secs cp-sync)") s | $(fmt "$r1")x | <= 1.2 | $(verdict "$r1" '<=' 1.2) |"
    local r2; r2=$(ratio media-zip zip-n)
    echo "| export --zip | $(fmt "$(med_secs media-zip)") s, $(fmt "$(med_cpu media-zip)") s CPU | \`zip -r -n <media>\` of the payload: $(fmt "$(med_secs zip-n)") s | $(fmt "$r2")x | <= 1.0 | $(verdict "$r2" '<=' 1.0) |"
    for m in media-dir media-zip; do
        local rss; rss=$(max_rss_mb $m)
        echo "| peak RSS, $m, $nfiles files | $(fmt "$rss" 1) MB | | | < 64 MB | $(verdict "$rss" '<' 64) |"
    done
    if [ "${BENCH_MEDIA_BIG:-1}" != 0 ]; then
        echo "| peak RSS, directory, $big_files files | $(fmt "$big_rss_dir" 1) MB | | | < 64 MB | $(verdict "$big_rss_dir" '<' 64) |"
        echo "| peak RSS, --zip, $big_files files | $(fmt "$big_rss_zip" 1) MB | | | < 64 MB | $(verdict "$big_rss_zip" '<' 64) |"
    fi
    echo
    echo "_Per-round times (s): directory $(all_secs media-dir); cp -r + sync $(all_secs cp-sync); --zip $(all_secs media-zip); zip -r -n $(all_secs zip-n)._"
    [ "$BENCH_OWN_DIR" = 1 ] && rm -rf "$src" "$src.params"
}

[ "${BENCH_MESSAGES_PART:-1}" = 0 ] || messages_part
[ "${BENCH_MEDIA:-1}" = 0 ] || { need_tool zip; media_part; }
bench_footer

#!/usr/bin/env bash
# bench-zip: `chatvault export SRC --out B --zip` (the bundle written straight into B.zip) against
# the two-step way: `chatvault export SRC --out B2` then `cd parent && zip -q -r -n <media> B2.zip B2`
# (target: >= 2x faster), on a simulated WeChat account WITH media files
# (default 200,000 messages, 10 groups).
#
# Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3), BENCH_ZIP_MESSAGES (200000), BENCH_ZIP_GROUPS (10).
# Prints a Markdown table on stdout (progress on stderr).
source "$(dirname "$0")/bench-lib.sh"

bench_init
need_tool zip "sudo apt-get install zip"

N=${BENCH_ZIP_MESSAGES:-200000}
G=${BENCH_ZIP_GROUPS:-10}
SRC="$BENCH_DIR/src-media"
params="$N $G seed1 $("$CHATVAULT" --version 2>/dev/null)"
if [ "$(cat "$SRC.params" 2>/dev/null)" != "$params" ]; then
    rm -rf "$SRC" "$SRC.params"
    note "simulating wechat with media, $N messages, $G groups → $SRC"
    "$CHATVAULT" simulate wechat --out "$SRC" --messages "$N" --groups "$G" --seed 1 >/dev/null
    echo "$params" >"$SRC.params"
fi
DB_BYTES=$(stat -c %s "$SRC/EnMicroMsg.db")
ALL_BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{s+=$1} END{print s}')
MEDIA_BYTES=$((ALL_BYTES - DB_BYTES))
MEDIA_FILES=$(($(find "$SRC" -type f | wc -l) - 1))
MEDIA_MB=$((MEDIA_BYTES / 1048576))
note "source: database $((DB_BYTES / 1048576)) MiB, $MEDIA_FILES media files, $MEDIA_MB MiB"

OUT="$BENCH_DIR/out"
clean_out() { rm -rf "$OUT/B" "$OUT/B.zip" "$OUT/B.sha256" "$OUT/B.zip.sha256" "$OUT/B2" "$OUT/B2.sha256" "$OUT/B2.zip"; }
mkdir -p "$OUT"

for r in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    clean_out; warm "$SRC"
    run export-zip "$r" "$CHATVAULT" export "$SRC" --out "$OUT/B" --zip --format csv
    ZIP_BYTES=$(stat -c %s "$OUT/B.zip")
    clean_out; warm "$SRC"
    run export-dir "$r" "$CHATVAULT" export "$SRC" --out "$OUT/B2" --format csv
    run zip-r "$r" bash -c 'cd "$1" && zip -q -r -n .jpg:.png:.gif:.mp4:.amr B2.zip B2' _ "$OUT"
    ZIP2_BYTES=$(stat -c %s "$OUT/B2.zip")
    clean_out
done

# two-step total per round, and the ratio two-step / --zip within each round
join <(sort -k1,1 "$BENCH_RES/export-dir.secs") <(sort -k1,1 "$BENCH_RES/zip-r.secs") |
    awk '{print $1, $2+$3}' >"$BENCH_RES/two-step.secs"

echo
echo "#### export --zip, $N messages, $G groups, $MEDIA_FILES media files ($MEDIA_MB MiB)"
echo
if [ "$MEDIA_MB" -lt 200 ]; then
    echo "_Note: the simulated media are small ($MEDIA_MB MiB); the comparison is dominated by CSV and per-file overhead._"
    echo
fi
r=$(ratio two-step export-zip)
echo "| measure | chatvault export --zip | compared with | speed-up | target | |"
echo "|---|---|---|---|---|---|"
echo "| bundle as zip | $(fmt "$(med_secs export-zip)") s, $((ZIP_BYTES / 1048576)) MiB zip | export to dir $(fmt "$(med_secs export-dir)") s + \`zip -r -n …\` $(fmt "$(med_secs zip-r)") s = $(fmt "$(med_secs two-step)") s, $((ZIP2_BYTES / 1048576)) MiB zip | $(fmt "$r")x | >= 2x | $(verdict "$r" '>=' 2) |"
echo "| export --zip vs export to a directory | | | $(fmt "$(ratio export-zip export-dir)")x the time | | |"
echo
echo "_Per-round times (s): --zip $(all_secs export-zip); export to dir $(all_secs export-dir); zip -r $(all_secs zip-r). Peak RSS of export --zip: $(fmt "$(max_rss_mb export-zip)" 1) MB. The simulator's media are random bytes (incompressible), as real JPEG/MP4/AMR are._"
cpu_note export-zip export-dir zip-r
bench_footer

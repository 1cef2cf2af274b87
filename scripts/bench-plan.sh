#!/usr/bin/env bash
# bench-plan: `chatvault plan SRC --out P.json --now 2030-01-01T00:00:00Z` on a 300,000-file
# WeChat cache against a bare metadata walk `find SRC -printf '%s %T@\n'` (target: within 1.5x),
# and `plan --hash` against the hashing limit on 2 cores, "near" it, in two shapes of cache:
# - the same 300,000 small files, where opening and reading each file, not SHA-256, is the
#   limit: against `chatvault hash SRC` (target: within 1.15x of its time);
# - a cache of photos and videos (default 2 GiB), where SHA-256 is the limit: against the
#   SHA-256 throughput of every core, measured in each round with `openssl speed -multi`
#   (SHA-NI; without openssl, BENCH_HASH_LIMIT_GBS, 2 x ~1.9 GB/s per bench-notes.md;
#   target: at least 70 %), and against `chatvault hash`.
# The small-file cache: a simulated WeChat account with media (default 50,000 messages) plus
# orphan files (1–4 KB, hex names like the app's) under image2/xx/yy/ and voice2/xx/yy/ up to
# the file count. The media cache: a small simulated account plus orphan photos (256 KB–1 MB)
# under image2/xx/yy/ and videos (4–16 MB) under video/.
#
# Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3), BENCH_PLAN_FILES (300000),
#      BENCH_PLAN_MESSAGES (50000), BENCH_HASH_LIMIT_GBS (3.8), BENCH_PLAN_MEDIA_MB (2048;
#      0 leaves the media cache out).
# Prints a Markdown table on stdout (progress on stderr).
source "$(dirname "$0")/bench-lib.sh"

bench_init
need_tool perl "sudo apt-get install perl"
need_tool find "sudo apt-get install findutils"

NF=${BENCH_PLAN_FILES:-300000}
NM=${BENCH_PLAN_MESSAGES:-50000}
LIMIT=${BENCH_HASH_LIMIT_GBS:-3.8}
NOW=2030-01-01T00:00:00Z
SRC="$BENCH_DIR/src-cache"
params="$NF $NM seed1 $("$CHATVAULT" --version 2>/dev/null)"
if [ "$(cat "$SRC.params" 2>/dev/null)" != "$params" ]; then
    rm -rf "$SRC" "$SRC.params"
    note "simulating wechat with media, $NM messages → $SRC"
    "$CHATVAULT" simulate wechat --out "$SRC" --messages "$NM" --groups 10 --seed 1 >/dev/null
    have=$(find "$SRC" -type f | wc -l)
    extra=$((NF - have))
    if [ "$extra" -gt 0 ]; then
        note "adding $extra orphan files (1–4 KB) under image2/ and voice2/"
        perl -e '
            my ($root, $n) = @ARGV; srand(7);
            my $blob = join("", map { chr(int(rand(256))) } 1 .. 65536);
            for my $i (0 .. $n - 1) {
                my $h = sprintf("%08x%08x%08x%08x", int(rand(2**32)), int(rand(2**32)), int(rand(2**32)), $i);
                my $kind = ($i % 4 == 3) ? "voice2" : "image2";
                my $d = "$root/$kind/" . substr($h, 0, 2) . "/" . substr($h, 2, 2);
                unless (-d $d) { mkdir "$root/$kind"; mkdir "$root/$kind/" . substr($h, 0, 2); mkdir $d; }
                my $name = $kind eq "voice2" ? "msg_$h.amr" : ($i % 2 ? "th_$h" : "$h.jpg");
                my $size = 1024 + int(rand(3 * 1024 + 1));
                open(my $fh, ">", "$d/$name") or die "$d/$name: $!";
                print $fh substr($blob, int(rand(65536 - $size)), $size); close $fh;
            }' "$SRC" "$extra"
    fi
    echo "$params" >"$SRC.params"
fi
FILES=$(find "$SRC" -type f | wc -l)
DIRS=$(find "$SRC" -type d | wc -l)
BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{s+=$1} END{printf "%d\n", s}')
DB_MB=$(($(stat -c %s "$SRC/EnMicroMsg.db") / 1048576))
note "cache: $FILES files in $DIRS directories, $((BYTES / 1048576)) MiB (database $DB_MB MiB)"

P="$BENCH_DIR/plan"
mkdir -p "$P"
clean_out() { rm -f "$P/P.json" "$P/P.csv" "$P/P.json.sha256" "$P"/.tmp*; }
warm_meta() { find "$SRC" -printf '' ; cat "$SRC/EnMicroMsg.db" >/dev/null; }

for r in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    clean_out; warm_meta
    run plan "$r" "$CHATVAULT" plan "$SRC" --out "$P/P.json" --now "$NOW"
    warm_meta
    run find "$r" find "$SRC" -printf '%s %T@\n'
    clean_out; warm "$SRC"
    run plan-hash "$r" "$CHATVAULT" plan "$SRC" --out "$P/P.json" --now "$NOW" --hash
    warm "$SRC"
    run hash "$r" "$CHATVAULT" hash "$SRC"
    clean_out
done

MEDIA_MB=${BENCH_PLAN_MEDIA_MB:-2048}
MEDIA="$BENCH_DIR/src-media"
if [ "$MEDIA_MB" -gt 0 ]; then
    params="$MEDIA_MB seed2 $("$CHATVAULT" --version 2>/dev/null)"
    if [ "$(cat "$MEDIA.params" 2>/dev/null)" != "$params" ]; then
        rm -rf "$MEDIA" "$MEDIA.params"
        note "simulating a media cache of $MEDIA_MB MiB → $MEDIA"
        "$CHATVAULT" simulate wechat --out "$MEDIA" --messages 2000 --groups 3 --seed 2 >/dev/null
        perl -e '
            my ($root, $mb) = @ARGV; srand(11);
            my $blob = join("", map { chr(int(rand(256))) } 1 .. (1 << 20));
            $blob .= $blob for 1 .. 4;    # 16 MiB to cut files from
            my ($left, $i) = ($mb << 20, 0);
            mkdir "$root/video";
            while ($left > 0) {
                my $h = sprintf("%08x%08x%08x%08x", int(rand(2**32)), int(rand(2**32)), int(rand(2**32)), $i);
                my ($path, $size);
                if ($i++ % 4 == 3) {
                    $path = "$root/video/$h.mp4"; $size = (4 << 20) + int(rand(12 << 20));
                } else {
                    my $d = "$root/image2/" . substr($h, 0, 2) . "/" . substr($h, 2, 2);
                    unless (-d $d) { mkdir "$root/image2"; mkdir "$root/image2/" . substr($h, 0, 2); mkdir $d; }
                    $path = "$d/$h.jpg"; $size = (256 << 10) + int(rand(768 << 10));
                }
                $size = $left if $size > $left;
                open(my $fh, ">", $path) or die "$path: $!";
                print $fh substr($blob, int(rand(length($blob) - $size)), $size); close $fh;
                $left -= $size;
            }' "$MEDIA" "$MEDIA_MB"
        echo "$params" >"$MEDIA.params"
    fi
    MEDIA_FILES=$(find "$MEDIA" -type f | wc -l)
    MEDIA_BYTES=$(find "$MEDIA" -type f -printf '%s\n' | awk '{s+=$1} END{printf "%d\n", s}')
    note "media cache: $MEDIA_FILES files, $((MEDIA_BYTES / 1048576)) MiB"
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        sample_load
        clean_out; warm "$MEDIA"
        run media-plan-hash "$r" "$CHATVAULT" plan "$MEDIA" --out "$P/P.json" --now "$NOW" --hash
        warm "$MEDIA"
        run media-hash "$r" "$CHATVAULT" hash "$MEDIA"
        clean_out
        if command -v openssl >/dev/null 2>&1; then
            # bytes/s on all cores, 1 MiB blocks; printed in thousands of bytes per second.
            openssl speed -multi "$(nproc)" -seconds 1 -bytes 1048576 -evp sha256 2>/dev/null |
                awk '$1=="sha256"{sub(/k$/, "", $2); printf "%.3f\n", $2*1000/1e9}' >>"$BENCH_RES/limit.gbs"
        fi
    done
    if [ -s "$BENCH_RES/limit.gbs" ]; then
        LIMIT=$(_median <"$BENCH_RES/limit.gbs")
        LIMIT_HOW="\`openssl speed -multi $(nproc) -evp sha256\` in the same rounds"
    fi
fi
LIMIT_HOW=${LIMIT_HOW:-"$(nproc) cores x SHA-NI, from bench-notes.md"}

gbs() { awk -v b="${2:-$BYTES}" -v t="$1" 'BEGIN{ printf "%.2f", b/t/1e9 }'; }
echo
echo "#### plan, $FILES files in $DIRS directories, $((BYTES / 1048576)) MiB (database $DB_MB MiB), warm cache"
echo
echo "| measure | chatvault | compared with | ratio | target | |"
echo "|---|---|---|---|---|---|"
r=$(ratio plan find)
echo "| plan | $(fmt "$(med_secs plan)") s, $(fmt "$(awk -v n="$FILES" -v t="$(med_secs plan)" 'BEGIN{print n/t/1000}')" 0)k files/s | \`find -printf '%s %T@\\n'\`: $(fmt "$(med_secs find)") s | $(fmt "$r")x the time | <= 1.5x | $(verdict "$r" '<=' 1.5) |"
r=$(ratio plan-hash hash)
echo "| plan --hash, small files | $(fmt "$(med_secs plan-hash)") s, $(gbs "$(med_secs plan-hash)") GB/s | \`chatvault hash\`: $(fmt "$(med_secs hash)") s, $(gbs "$(med_secs hash)") GB/s | $(fmt "$r")x the time | <= 1.15x | $(verdict "$r" '<=' 1.15) |"
if [ "$MEDIA_MB" -gt 0 ]; then
    t=$(med_secs media-plan-hash)
    f=$(awk -v b="$MEDIA_BYTES" -v t="$t" -v l="$LIMIT" 'BEGIN{print b/t/1e9/l}')
    echo "| plan --hash, $MEDIA_FILES photos and videos, $((MEDIA_BYTES / 1048576)) MiB | $(fmt "$t") s, $(gbs "$t" "$MEDIA_BYTES") GB/s | the hashing limit: $(fmt "$LIMIT") GB/s ($LIMIT_HOW) | $(fmt "$(awk -v f="$f" 'BEGIN{print f*100}')" 0) % of the limit | >= 70 % | $(verdict "$f" '>=' 0.7) |"
    r=$(ratio media-plan-hash media-hash)
    echo "| plan --hash, same media cache | $(fmt "$t") s | \`chatvault hash\`: $(fmt "$(med_secs media-hash)") s, $(gbs "$(med_secs media-hash)" "$MEDIA_BYTES") GB/s | $(fmt "$r")x the time | | |"
fi
echo
echo "_Per-round times (s): plan $(all_secs plan); find $(all_secs find); plan --hash $(all_secs plan-hash); hash $(all_secs hash)$([ "$MEDIA_MB" -gt 0 ] && echo "; media plan --hash $(all_secs media-plan-hash); media hash $(all_secs media-hash)"). Peak RSS: plan $(fmt "$(max_rss_mb plan)" 1) MB, plan --hash $(fmt "$(max_rss_mb plan-hash)" 1) MB. With files of a few KB the per-file open/read/close cost, not SHA-256, bounds any tool, so there the limit is hashing the same files alone._"
if [ "$MEDIA_MB" -gt 0 ]; then
    cpu_note plan find plan-hash hash media-plan-hash media-hash
else
    cpu_note plan find plan-hash hash
fi
bench_footer

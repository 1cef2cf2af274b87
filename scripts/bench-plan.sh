#!/usr/bin/env bash
# bench-plan: `chatvault plan SRC --out P.json --now 2030-01-01T00:00:00Z` on a 300,000-file
# WeChat cache against a bare metadata walk `find SRC -printf '%s %T@\n'` (target: within 1.5x),
# and `plan --hash` against `chatvault hash SRC` and against the hashing limit on 2 cores
# (2 x ~1.9 GB/s SHA-256 with SHA-NI, bench-notes.md): "near the hashing limit".
# The cache: a simulated WeChat account with media (default 50,000 messages) plus orphan files
# (1–4 KB, hex names like the app's) under image2/xx/yy/ and voice2/xx/yy/ up to the file count.
#
# Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3), BENCH_PLAN_FILES (300000),
#      BENCH_PLAN_MESSAGES (50000), BENCH_HASH_LIMIT_GBS (3.8).
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
BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{s+=$1} END{print s}')
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

gbs() { awk -v b="$BYTES" -v t="$1" 'BEGIN{ printf "%.2f", b/t/1e9 }'; }
echo
echo "#### plan, $FILES files in $DIRS directories, $((BYTES / 1048576)) MiB (database $DB_MB MiB), warm cache"
echo
echo "| measure | chatvault | compared with | ratio | target | |"
echo "|---|---|---|---|---|---|"
r=$(ratio plan find)
echo "| plan | $(fmt "$(med_secs plan)") s, $(fmt "$(awk -v n="$FILES" -v t="$(med_secs plan)" 'BEGIN{print n/t/1000}')" 0)k files/s | \`find -printf '%s %T@\n'\`: $(fmt "$(med_secs find)") s | $(fmt "$r")x the time | <= 1.5x | $(verdict "$r" '<=' 1.5) |"
r=$(ratio plan-hash hash)
t=$(med_secs plan-hash)
echo "| plan --hash | $(fmt "$t") s, $(gbs "$t") GB/s | \`chatvault hash\`: $(fmt "$(med_secs hash)") s, $(gbs "$(med_secs hash)") GB/s | $(fmt "$r")x the time | ~1x | |"
f=$(awk -v b="$BYTES" -v t="$t" -v l="$LIMIT" 'BEGIN{print b/t/1e9/l}')
echo "| plan --hash vs the hashing limit | $(gbs "$t") GB/s | $LIMIT GB/s (2 cores x SHA-NI) | $(fmt "$(awk -v f="$f" 'BEGIN{print f*100}')" 0) % of the limit | near it | $(verdict "$f" '>=' 0.7) |"
echo
echo "_Per-round times (s): plan $(all_secs plan); find $(all_secs find); plan --hash $(all_secs plan-hash); hash $(all_secs hash). Peak RSS: plan $(fmt "$(max_rss_mb plan)" 1) MB, plan --hash $(fmt "$(max_rss_mb plan-hash)" 1) MB. \"Near\" = at least 70 % of the limit; with files of a few KB the per-file open/read/close cost, not SHA-256, bounds any tool._"
cpu_note plan find plan-hash hash
bench_footer

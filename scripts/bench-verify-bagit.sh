#!/usr/bin/env bash
# bench-verify-bagit: `chatvault verify BAG` against `bagit.py --validate --processes 2 BAG`
# on the same bag, in the same rounds: a bag made by bagit.py of 20,000 files (2 GB in
# all, 50–150 KB each, incompressible) with SHA-256 and SHA-512 manifests (target: >= 5x).
# Inputs are read once right before each timed command (warm page cache), rounds
# interleaved. Also `verify --fast` and a zip of the same bag (stored, so that inflating
# does not set the pace).
#
# Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3), BENCH_BAG_FILES (20000), BENCH_BAG_MB (2048),
#      BAGIT_PY (bagit.py from PATH).
# Prints a Markdown table on stdout (progress on stderr).
source "$(dirname "$0")/bench-lib.sh"

bench_init
need_tool openssl "sudo apt-get install openssl"
need_tool perl "sudo apt-get install perl"
need_tool zip "sudo apt-get install zip"
BAGIT_PY=${BAGIT_PY:-$(command -v bagit.py || true)}
[ -x "$BAGIT_PY" ] || die "bagit.py not found — python3 -m venv v && v/bin/pip install bagit, then BAGIT_PY=v/bin/bagit.py"

NFILES=${BENCH_BAG_FILES:-20000}
MB=${BENCH_BAG_MB:-2048}
BAG="$BENCH_DIR/bag"
ZIP="$BENCH_DIR/bag.zip"

stream() { openssl enc -aes-128-ctr -nosalt -pass pass:chatvault-bench -in /dev/zero 2>/dev/null || true; }

if [ "$(cat "$BAG.params" 2>/dev/null)" != "$NFILES $MB" ]; then
    rm -rf "$BAG" "$BAG.params" "$ZIP"
    note "writing $NFILES files, $MB MiB in all, under $BAG"
    # Sizes uniform in [mean/2, 3*mean/2], 200 files per directory, fixed seed.
    stream | perl -e '
        my ($dir, $n, $mb) = @ARGV; srand(1); mkdir $dir or die;
        my $mean = int($mb * 1048576 / $n);
        for my $i (0 .. $n - 1) {
            my $d = sprintf("%s/%03d", $dir, int($i / 200));
            mkdir $d unless -d $d;
            my $size = int($mean / 2 + rand($mean));
            read(STDIN, my $buf, $size) == $size or die "short read";
            open(my $fh, ">", sprintf("%s/f%05d.bin", $d, $i)) or die; print $fh $buf; close $fh;
        }' "$BAG" "$NFILES" "$MB"
    note "bagging with bagit.py --sha256 --sha512"
    "$BAGIT_PY" --quiet --processes 2 --sha256 --sha512 "$BAG" 2>/dev/null
    (cd "$BENCH_DIR" && zip -q -0 -r bag.zip bag)
    echo "$NFILES $MB" >"$BAG.params"
fi
BYTES=$(awk -F': ' '/Payload-Oxum/{split($2, a, "."); print a[1]}' "$BAG/bag-info.txt")
note "bag: $NFILES files, $((BYTES / 1048576)) MiB, $(grep -c . "$BAG/manifest-sha256.txt") manifest lines"

for r in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    warm "$BAG"; run verify "$r" "$CHATVAULT" verify "$BAG"
    warm "$BAG"; run bagit-py "$r" "$BAGIT_PY" --validate --processes 2 "$BAG"
    warm "$BAG"; run verify-fast "$r" "$CHATVAULT" verify --fast "$BAG"
    warm "$BAG"; run bagit-py-fast "$r" "$BAGIT_PY" --validate --fast "$BAG"
    warm "$ZIP"; run verify-zip "$r" "$CHATVAULT" verify "$ZIP"
done

gbs() { awk -v b="$1" -v t="$2" 'BEGIN{ printf "%.2f", b/t/1e9 }'; }
echo
echo "#### verify a bagit.py bag: $NFILES files, $((BYTES / 1048576)) MiB, SHA-256 + SHA-512, warm cache"
echo
echo "| command | chatvault | bagit.py | speed-up | target | |"
echo "|---|---|---|---|---|---|"
t=$(med_secs verify); s=$(med_secs bagit-py); r=$(ratio bagit-py verify)
echo "| verify (every checksum) vs \`--validate --processes 2\` | $(fmt "$t") s, $(gbs "$BYTES" "$t") GB/s | $(fmt "$s") s, $(gbs "$BYTES" "$s") GB/s | $(fmt "$r")x | >= 5x | $(verdict "$r" '>=' 5) |"
t=$(med_secs verify-fast); s=$(med_secs bagit-py-fast); r=$(ratio bagit-py-fast verify-fast)
echo "| verify --fast vs \`--validate --fast\` | $(fmt "$t" 3) s | $(fmt "$s" 3) s | $(fmt "$r")x | | |"
t=$(med_secs verify-zip)
echo "| verify of the bag zipped (stored) | $(fmt "$t") s, $(gbs "$BYTES" "$t") GB/s | (reads directories only) | | | |"
echo
echo "_Per round: verify $(all_secs verify) s; bagit.py $(all_secs bagit-py) s. Peak RSS: verify $(fmt "$(max_rss_mb verify)" 1) MB, zip $(fmt "$(max_rss_mb verify-zip)" 1) MB, bagit.py $(fmt "$(max_rss_mb bagit-py)" 1) MB._"
cpu_note verify bagit-py verify-zip
bench_footer

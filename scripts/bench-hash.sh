#!/usr/bin/env bash
# bench-hash: `chatvault hash PATH > /dev/null` (SHA-256, parallel, SHA-NI when the CPU has it)
#   - one 2 GiB file against `sha256sum FILE`                                    (target >= 4x faster)
#   - 20,000 small files (1–60 KB) against
#     `find DIR -type f -print0 | xargs -0 -P2 sha256sum`                         (target >= 4x faster)
# Inputs are read once right before each timed command (warm page cache), rounds interleaved.
#
# Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3), BENCH_HASH_MB (2048), BENCH_SMALL_FILES (20000).
# Prints a Markdown table on stdout (progress on stderr).
source "$(dirname "$0")/bench-lib.sh"

bench_init
need_tool sha256sum "sudo apt-get install coreutils"
need_tool openssl "sudo apt-get install openssl"
need_tool perl "sudo apt-get install perl"
need_tool xargs "sudo apt-get install findutils"

MB=${BENCH_HASH_MB:-2048}
NFILES=${BENCH_SMALL_FILES:-20000}
BIGF="$BENCH_DIR/big.bin"
SMALL="$BENCH_DIR/small"

# Incompressible bytes quickly: AES-CTR keystream (GB/s with AES-NI; /dev/urandom is slower).
# (it ends by SIGPIPE when the reader has enough: ignore its status)
stream() { openssl enc -aes-128-ctr -nosalt -pass pass:chatvault-bench -in /dev/zero 2>/dev/null || true; }

if [ "$(stat -c %s "$BIGF" 2>/dev/null || echo 0)" != $((MB * 1048576)) ]; then
    note "writing $BIGF ($MB MiB)"
    stream | head -c $((MB * 1048576)) >"$BIGF"
fi
if [ "$(cat "$SMALL.params" 2>/dev/null)" != "$NFILES" ]; then
    rm -rf "$SMALL" "$SMALL.params"
    note "writing $NFILES files of 1–60 KB under $SMALL"
    # 200 files per directory; sizes uniform in [1 KiB, 60 KiB], fixed seed
    stream | perl -e '
        my ($dir, $n) = @ARGV; srand(1); mkdir $dir or die;
        for my $i (0 .. $n - 1) {
            my $d = sprintf("%s/%03d", $dir, int($i / 200));
            mkdir $d unless -d $d;
            my $size = 1024 + int(rand(59 * 1024 + 1));
            read(STDIN, my $buf, $size) == $size or die "short read";
            open(my $fh, ">", sprintf("%s/f%05d.bin", $d, $i)) or die; print $fh $buf; close $fh;
        }' "$SMALL" "$NFILES"
    echo "$NFILES" >"$SMALL.params"
fi
SMALL_BYTES=$(find "$SMALL" -type f -printf '%s\n' | awk '{s+=$1} END{print s}')
XARGS_BATCHES=$(find "$SMALL" -type f -print0 | xargs -0 sh -c 'echo' | wc -l)
note "small files: $NFILES, $((SMALL_BYTES / 1048576)) MiB; xargs runs sha256sum $XARGS_BATCHES time(s)"

for r in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    warm "$BIGF"; run hash-big "$r" "$CHATVAULT" hash "$BIGF"
    warm "$BIGF"; run sha256sum-big "$r" sha256sum "$BIGF"
    warm "$SMALL"; run hash-small "$r" "$CHATVAULT" hash "$SMALL"
    warm "$SMALL"; run sha256sum-small "$r" bash -c 'find "$1" -type f -print0 | xargs -0 -P2 sha256sum' _ "$SMALL"
done

gbs() { awk -v b="$1" -v t="$2" 'BEGIN{ printf "%.2f", b/t/1e9 }'; }
echo
echo "#### hash (SHA-256), warm cache"
echo
echo "| input | chatvault hash | compared with | speed-up | target | |"
echo "|---|---|---|---|---|---|"
t=$(med_secs hash-big); s=$(med_secs sha256sum-big); r=$(ratio sha256sum-big hash-big)
echo "| 1 file, $MB MiB | $(fmt "$t") s, $(gbs $((MB * 1048576)) "$t") GB/s | sha256sum: $(fmt "$s") s, $(gbs $((MB * 1048576)) "$s") GB/s | $(fmt "$r")x | >= 4x | $(verdict "$r" '>=' 4) |"
t=$(med_secs hash-small); s=$(med_secs sha256sum-small); r=$(ratio sha256sum-small hash-small)
echo "| $NFILES files, 1–60 KB, $((SMALL_BYTES / 1048576)) MiB | $(fmt "$t") s, $(gbs "$SMALL_BYTES" "$t") GB/s | find \| xargs -0 -P2 sha256sum: $(fmt "$s") s, $(gbs "$SMALL_BYTES" "$s") GB/s | $(fmt "$r")x | >= 4x | $(verdict "$r" '>=' 4) |"
echo
echo "_Peak RSS: chatvault hash $(fmt "$(max_rss_mb hash-big)" 1) MB (big file), $(fmt "$(max_rss_mb hash-small)" 1) MB (small files). xargs started sha256sum $XARGS_BATCHES time(s) for the small files (with one batch, -P2 runs a single process)._"
cpu_note hash-big sha256sum-big hash-small sha256sum-small
bench_footer

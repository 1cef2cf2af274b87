# Shared helpers for scripts/bench-*.sh (sourced, not run).
#
# Conventions (the machine drops idle page cache and its speed drifts, so):
#   - interleaved rounds (A B A B …), medians, ratios taken within the same round;
#   - inputs are read once right before each timed command (the machine drops idle
#     page cache after 15–30 s), previous outputs are deleted before each run;
#   - wall time from bash's EPOCHREALTIME, peak RSS from `/usr/bin/time -v`.
#
# Environment:
#   CHATVAULT   the binary (default: <repo>/target/release/chatvault)
#   BENCH_DIR   work directory (default: a mktemp dir, removed at exit)
#   BENCH_ROUNDS number of interleaved rounds (default 3, minimum 1)

set -euo pipefail

BENCH_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# need_tool NAME [HOW-TO-INSTALL]
need_tool() {
    command -v "$1" >/dev/null 2>&1 || die "missing tool \`$1\`${2:+ — install it: $2}"
}

bench_init() {
    need_tool awk
    need_tool sort
    [ -x /usr/bin/time ] || die "missing /usr/bin/time (GNU time, used for peak RSS) — install it: sudo apt-get install time"
    /usr/bin/time -v true >/dev/null 2>&1 || die "/usr/bin/time does not support -v (need GNU time) — install it: sudo apt-get install time"
    CHATVAULT="${CHATVAULT:-$BENCH_REPO/target/release/chatvault}"
    [ -x "$CHATVAULT" ] || die "chatvault binary not found at $CHATVAULT — build it: (cd $BENCH_REPO && cargo build --release), or set CHATVAULT=/path/to/chatvault"
    CHATVAULT="$(cd "$(dirname "$CHATVAULT")" && pwd)/$(basename "$CHATVAULT")"
    BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
    if [ -n "${BENCH_DIR:-}" ]; then
        mkdir -p "$BENCH_DIR"
        BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"
        BENCH_OWN_DIR=0
    else
        BENCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/chatvault-bench.XXXXXX")"
        BENCH_OWN_DIR=1
        trap 'rm -rf "$BENCH_DIR"' EXIT
    fi
    BENCH_RES="$BENCH_DIR/.results"
    rm -rf "$BENCH_RES"
    mkdir -p "$BENCH_RES"
    BENCH_LOADS=()
    BENCH_T0=$EPOCHREALTIME
    note "binary $CHATVAULT ($("$CHATVAULT" --version 2>/dev/null || echo '?')), work dir $BENCH_DIR, $(nproc) cores"
}

# Record the 1-minute load average (call a few times during a run).
sample_load() { BENCH_LOADS+=("$(cut -d' ' -f1 /proc/loadavg)"); }

# warm PATH… : read the inputs once (page cache), quietly.
warm() {
    local p
    for p in "$@"; do
        if [ -d "$p" ]; then
            find "$p" -type f -print0 | xargs -0 -r cat >/dev/null 2>&1 || true
        elif [ -e "$p" ]; then
            cat "$p" >/dev/null
        fi
    done
}

# run LABEL ROUND CMD… : time CMD (stdout to /dev/null, stderr to a log), record wall seconds
# and peak RSS (KiB) under LABEL for ROUND. Fails the script if CMD fails.
# Use `bash -c '…'` as CMD for pipelines or redirections. With RUN_STDOUT=log, CMD's stdout
# goes to the log too (for summaries printed on stdout); otherwise to /dev/null.
run() {
    local label=$1 round=$2; shift 2
    local log="$BENCH_RES/$label.$round.log" tv="$BENCH_RES/$label.$round.time"
    local t0 t1 rc=0
    t0=$EPOCHREALTIME
    if [ "${RUN_STDOUT:-}" = log ]; then
        /usr/bin/time -v -o "$tv" "$@" >"$log" 2>&1 || rc=$?
    else
        /usr/bin/time -v -o "$tv" "$@" >/dev/null 2>"$log" || rc=$?
    fi
    t1=$EPOCHREALTIME
    if [ "$rc" -ne 0 ]; then
        echo "bench: \`$*\` failed (exit $rc); its stderr:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    local secs rss
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tv")
    echo "$round $secs" >>"$BENCH_RES/$label.secs"
    echo "$round $rss" >>"$BENCH_RES/$label.rss"
    awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{print u+s}' "$tv" | sed "s/^/$round /" >>"$BENCH_RES/$label.cpu"
    note "$(printf 'round %s  %-22s %8.2f s  %7.1f MB RSS' "$round" "$label" "$secs" "$(awk -v k="$rss" 'BEGIN{print k/1024}')")"
}

# The log (stderr) of LABEL's run in ROUND.
run_log() { cat "$BENCH_RES/$1.$2.log"; }

_median() { sort -g | awk '{v[NR]=$1} END{ if (NR==0) {print "nan"; exit} if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }

# med_secs LABEL / med_rss_mb LABEL / max_rss_mb LABEL
med_secs() { awk '{print $2}' "$BENCH_RES/$1.secs" | _median; }
med_rss_mb() { awk '{print $2/1024}' "$BENCH_RES/$1.rss" | _median; }
max_rss_mb() { awk '{print $2/1024}' "$BENCH_RES/$1.rss" | sort -g | tail -n1; }
# med_cpu LABEL : median user+sys CPU seconds
med_cpu() { awk '{print $2}' "$BENCH_RES/$1.cpu" | _median; }
# all_secs LABEL : the per-round times, "a / b / c"
all_secs() { awk '{printf "%s%.2f", (NR>1?" / ":""), $2}' "$BENCH_RES/$1.secs"; }

# ratio A B : median over rounds of (time A / time B) within the same round.
ratio() {
    join <(sort -k1,1 "$BENCH_RES/$1.secs") <(sort -k1,1 "$BENCH_RES/$2.secs") |
        awk '$3>0{print $2/$3}' | _median
}

# fmt NUMBER [DECIMALS]
fmt() { awk -v x="$1" -v d="${2:-2}" 'BEGIN{ if (x=="nan"||x=="") print "n/a"; else printf "%.*f", d, x }'; }

# verdict VALUE OP TARGET : "met" / "MISSED" (OP one of < <= > >=)
verdict() {
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN{
        if (v=="nan"||v=="") { print "n/a"; exit }
        ok = (op=="<" ? v<t : op=="<=" ? v<=t : op==">" ? v>t : v>=t)
        print (ok ? "met" : "**MISSED**") }'
}

# cpu_note LABEL… : median wall vs median CPU (user+sys) seconds; on a shared machine the
# CPU seconds show how much of the wall time was spent waiting for a core.
cpu_note() {
    local l out=""
    for l in "$@"; do
        out+="${out:+; }$l $(fmt "$(med_secs "$l")") s wall / $(fmt "$(med_cpu "$l")") s CPU"
    done
    echo
    echo "_Median wall vs CPU (user+sys) time: $out._"
}

# Footer: load average, rounds, machine.
bench_footer() {
    sample_load
    local loads
    loads=$(printf '%s ' "${BENCH_LOADS[@]}")
    echo
    echo "_$(nproc) cores, ${BENCH_ROUNDS} interleaved rounds (medians; ratios are medians of same-round ratios);" \
        "1-min load average during the run: ${loads% }; total $(awk -v a="$BENCH_T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.0f", b-a}') s;" \
        "$("$CHATVAULT" --version 2>/dev/null || echo chatvault), $(date -u +%Y-%m-%d)._"
}

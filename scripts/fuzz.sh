#!/usr/bin/env bash
# Coverage-guided fuzzing of chatvault's parsers (fuzz/, cargo-fuzz on nightly).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   fuzz each target (default: all) for SECONDS
#                                           (default 600)
#   scripts/fuzz.sh --regressions [TARGET...]
#                                           replay fuzz/corpus and fuzz/regressions once
#                                           per target (-runs=0), for CI
#
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz`. Targets run one
# after another under `nice`; the build uses CARGO_BUILD_JOBS (default 1). FUZZ_SANITIZER
# (default `address`) is passed as `--sanitizer`; CI uses `none` for a build that takes
# half as long, since the parsers are safe Rust. New inputs go to
# fuzz/grown/<target>/ (not committed), failing inputs to fuzz/artifacts/<target>/, logs to
# fuzz/grown/logs/. A failing input belongs, once its bug is fixed, in
# fuzz/regressions/<target>/, which tests/fuzz_regressions.rs replays on stable.
#
# Prints per target: runs, corpus size, and whether a crash, hang (-timeout=10) or OOM
# (-rss_limit_mb=512) was found. Exits 1 if any target failed.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
TOOLCHAIN="${FUZZ_TOOLCHAIN:-+nightly}"
SANITIZER="${FUZZ_SANITIZER:-address}"

mode=fuzz
seconds=600
if [[ "${1:-}" == "--regressions" ]]; then
    mode=regressions
    shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=()
    for source in fuzz/fuzz_targets/*.rs; do
        name=$(basename "$source" .rs)
        targets+=("$name")
    done
fi
for target in "${targets[@]}"; do
    if [[ ! -f "fuzz/fuzz_targets/$target.rs" ]]; then
        echo "fuzz.sh: no target $target (see fuzz/fuzz_targets/)" >&2
        exit 2
    fi
done

if ! cargo "$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is missing: rustup toolchain install nightly && cargo install cargo-fuzz" >&2
    exit 2
fi

echo "building ${#targets[@]} fuzz targets (CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS)"
for target in "${targets[@]}"; do
    nice -n 10 cargo "$TOOLCHAIN" fuzz build --sanitizer "$SANITIZER" "$target"
done

mkdir -p fuzz/grown/logs
failed=0
printf '\n%-18s %12s %22s  %s\n' target runs 'corpus (in memory)' result
for target in "${targets[@]}"; do
    log="fuzz/grown/logs/$target.log"
    dirs=()
    if [[ $mode == fuzz ]]; then
        mkdir -p "fuzz/grown/$target"
        dirs+=("fuzz/grown/$target")
        flags=("-max_total_time=$seconds")
    else
        flags=("-runs=0")
    fi
    for dir in "fuzz/corpus/$target" "fuzz/regressions/$target"; do
        [[ -d "$dir" ]] && dirs+=("$dir")
    done
    before=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l || true)
    status=0
    nice -n 10 cargo "$TOOLCHAIN" fuzz run --sanitizer "$SANITIZER" "$target" "${dirs[@]}" -- \
        "${flags[@]}" -timeout=10 -rss_limit_mb=512 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    after=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l || true)

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # "#123 DONE cov: 1 ft: 2 corp: 34/5678b ..." (or the last status line before a crash)
    corpus=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 |
        sed -E 's|corp: ([0-9]+)/(.*)|\1 inputs, \2|')
    if [[ $status -eq 0 ]]; then
        result="ok"
    else
        failed=1
        if grep -q 'ERROR: libFuzzer: timeout' "$log"; then
            result="HANG"
        elif grep -qE 'ERROR: libFuzzer: out-of-memory|malloc\(.*\) exceeds limit' "$log"; then
            result="OOM"
        elif grep -qE 'ERROR: libFuzzer: deadly signal|panicked at|ERROR: AddressSanitizer' "$log"; then
            result="CRASH"
        else
            result="FAILED (exit $status)"
        fi
        if [[ $after -gt $before ]]; then
            result="$result: fuzz/artifacts/$target/$(ls -t "fuzz/artifacts/$target" | head -1)"
        fi
        result="$result (log $log)"
    fi
    printf '%-18s %12s %22s  %s\n' "$target" "${runs:-?}" "${corpus:-?}" "$result"
done
exit $failed

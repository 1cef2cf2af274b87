#!/bin/sh
# Regenerates the golden files under testdata/<platform>/golden/ from the committed
# fixtures, and with --fixture first re-simulates the fixtures themselves.
#
#   testdata/GENERATE.sh [--fixture] [PLATFORM...]      (default: wechat qq wecom dingtalk)
#
# Build the binary first (cargo build); CHATVAULT_BIN overrides where it is looked for
# (default: ${CARGO_TARGET_DIR:-target}/debug/chatvault). tests/golden.rs runs the same
# commands and normalizes the same plan fields (see testdata/README.md); after running
# this, `cargo test --test golden` must pass. `UPDATE_GOLDEN=1 cargo test --test golden`
# rewrites the goldens the same way without this script.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${CHATVAULT_BIN:-${CARGO_TARGET_DIR:-target}/debug/chatvault}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
[ -x "$BIN" ] || { echo "no chatvault binary at $BIN (run cargo build)" >&2; exit 2; }

# Times, shared by every platform (tests/golden.rs has the same constants).
SIM_NOW=2025-06-12T08:00:00Z       # simulate --now
FIXED=2025-06-12T09:00:00Z         # export --fixed-time
PLAN_NOW=2025-06-20T00:00:00Z      # plan --now
DISSOLVED=2025-06-10T00:00:00Z     # plan --dissolved-at GROUP=this

# Per platform: the simulator's options (seed and edge rate picked so that a fixture of
# 100-150 messages holds every message kind and planted edge case), where the account
# directory lies under source/ (DingTalk takes the owner's uid from the name
# <uid>_v2), and the group the plan treats as dissolved.
settings() {
    case $1 in
    wechat)
        SIM="--groups 4 --members 6 --messages 150 --days 10 --seed 8 --edge-rate 0.5 --wal"
        ACCOUNT=source GROUP=52587138491@chatroom ;;
    qq)
        SIM="--groups 4 --members 6 --messages 150 --days 10 --seed 12 --edge-rate 0.5 --wal"
        ACCOUNT=source GROUP=1360565934 ;;
    wecom)
        SIM="--groups 4 --members 6 --messages 150 --days 10 --seed 6 --edge-rate 0.3 --wal"
        ACCOUNT=source GROUP=wruUx2iupkEyZjG6TkM8rxpSKemk8V7i ;;
    dingtalk)
        SIM="--groups 4 --members 6 --messages 100 --days 10 --seed 11 --edge-rate 0.3 --wal"
        ACCOUNT=source/123456_v2 GROUP='cidwHHfp+n0fYx==' ;;
    *) echo "unknown platform $1" >&2; exit 2 ;;
    esac
}

# Files stored gzipped (gzip -9n) because the simulator writes them mostly empty and
# large: DingTalk's database has 128 message shards (1.7 MB, 27 KB gzipped). The
# copy step below (and tests/golden.rs) restores them byte for byte.
COMPRESSED="source/123456_v2/DBFiles/dingtalk.db"

# Copies testdata/$1/source to $2/source as the simulator wrote it: decompresses the
# files stored gzipped and sets every file's mtime (symlinks' own) from source.mtimes,
# since git keeps neither; plan records mtimes.
copy_fixture() {
    cp -R -P "testdata/$1/source" "$2/source"
    while IFS= read -r line; do
        case $line in '#'*) continue ;; esac
        mtime=${line#* }; path=${mtime#* }; mtime=${mtime%% *}
        if [ ! -e "$2/$path" ] && [ -f "$2/$path.gz" ]; then
            gzip -dc "$2/$path.gz" > "$2/$path"
            rm "$2/$path.gz"
        fi
        touch -h -d "@$mtime" "$2/$path"
    done < "testdata/$1/source.mtimes"
}

make_fixture() {
    p=$1
    rm -rf "testdata/$p/source" "testdata/$p/source.mtimes"
    mkdir -p "testdata/$p"
    # shellcheck disable=SC2086
    "$BIN" simulate "$p" --out "testdata/$p/$ACCOUNT" --now "$SIM_NOW" $SIM
    {
        echo "# type (f file, l symlink), mtime (seconds since 1970, find %T@), path; written by GENERATE.sh"
        (cd "testdata/$p" && find source ! -type d -printf '%y %T@ %p\n' | LC_ALL=C sort -k3)
    } > "testdata/$p/source.mtimes"
    for f in $COMPRESSED; do
        if [ -f "testdata/$p/$f" ]; then gzip -9n "testdata/$p/$f"; fi
    done
}

make_golden() {
    p=$1
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    copy_fixture "$p" "$work"
    cp testdata/key.bin "$work/key.bin"
    mkdir "$work/out" "$work/out/plan"
    (
        cd "$work"
        "$BIN" export "$ACCOUNT" --out out/bundle --fixed-time "$FIXED"
        "$BIN" export "$ACCOUNT" --out out/anon --fixed-time "$FIXED" --anonymize --key-file key.bin
        "$BIN" plan "$ACCOUNT" --out out/plan/PLAN.json --now "$PLAN_NOW" --dissolved-at "$GROUP=$DISSOLVED" --hash
        (cd out/plan && sha256sum -c --quiet PLAN.json.sha256)
    ) > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
    # The plan's machine-specific fields, and so its sidecar (checked just above):
    # header source_root (absolute), root_dev, root_ino; each entry's ctime, dev, ino.
    plan=$work/out/plan
    sed -E \
        -e 's/^(  "source_root": )"([^"\\]|\\.)*"/\1"<source_root>"/' \
        -e 's/^(  "root_dev": )[0-9]+/\1"<dev>"/' \
        -e 's/^(  "root_ino": )[0-9]+/\1"<ino>"/' \
        -e 's/"ctime":"[^"]*"/"ctime":"<ctime>"/' \
        -e 's/"dev":[0-9]+/"dev":"<dev>"/' \
        -e 's/"ino":[0-9]+/"ino":"<ino>"/' \
        "$plan/PLAN.json" > "$plan/PLAN.json.n"
    # PLAN.csv columns 4-6 (ctime, dev, ino) of every record after the header; the
    # path (column 1) may be quoted.
    sed -E '2,$ s/^("([^"]|"")*"|[^,"]*),([^,]*),([^,]*),[^,]*,[^,]*,[^,]*,/\1,\3,\4,<ctime>,<dev>,<ino>,/' \
        "$plan/PLAN.csv" > "$plan/PLAN.csv.n"
    sed -E 's/^[0-9a-f]{64}/<sha256 of PLAN.json>/' "$plan/PLAN.json.sha256" > "$plan/PLAN.json.sha256.n"
    for f in PLAN.json PLAN.csv PLAN.json.sha256; do mv "$plan/$f.n" "$plan/$f"; done
    # Copied media are pinned by manifest-sha256.txt, not kept twice.
    rm -rf "$work/out/bundle/data/media" "$work/out/anon/data/media"
    rm -rf "testdata/$p/golden"
    cp -R "$work/out" "testdata/$p/golden"
    rm -rf "$work"
    trap - EXIT
    echo "wrote testdata/$p/golden"
}

FIXTURE=no
if [ "${1:-}" = --fixture ]; then FIXTURE=yes; shift; fi
[ $# -gt 0 ] || set -- wechat qq wecom dingtalk
for p in "$@"; do
    settings "$p"
    if [ $FIXTURE = yes ]; then make_fixture "$p"; fi
    make_golden "$p"
done

#!/usr/bin/env bash
# bench-verify-memory: peak RSS of `chatvault verify` on bags whose size would show
# memory that grows with them (target: < 64 MB for any bag):
#   files-1m    a directory bag of 1,000,000 payload files (a 1M-line manifest)
#   missing-1m  a 1,000,000-line manifest whose files are all missing (every one reported)
#   zip-200k    a zip bag of 200,000 entries
#   line-50mb   a manifest holding one 50 MB line
#
# Env: CHATVAULT, BENCH_DIR, BENCH_VERIFY_FILES (1000000), BENCH_VERIFY_ZIP_ENTRIES (200000).
# Prints a Markdown table on stdout (progress on stderr).
source "$(dirname "$0")/bench-lib.sh"

bench_init
need_tool python3

FILES=${BENCH_VERIFY_FILES:-1000000}
ENTRIES=${BENCH_VERIFY_ZIP_ENTRIES:-200000}
note "generating bags ($FILES files, $ENTRIES zip entries) in $BENCH_DIR"
python3 - "$BENCH_DIR" "$FILES" "$ENTRIES" <<'PY'
import hashlib, os, sys, zipfile
root, files, entries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
DECL = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"

def tags(bag_dir, manifest, oxum):
    info = f"Bag-Software-Agent: bench\nPayload-Oxum: {oxum}\n".encode()
    files = {"bagit.txt": DECL, "bag-info.txt": info}
    with open(os.path.join(bag_dir, "manifest-sha256.txt"), "wb") as f:
        f.write(manifest)
    listing = []
    for name, data in files.items():
        with open(os.path.join(bag_dir, name), "wb") as f:
            f.write(data)
        listing.append((name, hashlib.sha256(data).hexdigest()))
    listing.append(("manifest-sha256.txt", hashlib.sha256(manifest).hexdigest()))
    with open(os.path.join(bag_dir, "tagmanifest-sha256.txt"), "w") as f:
        f.writelines(f"{d}  {n}\n" for n, d in sorted(listing))

def dir_bag(name, count, create):
    bag = os.path.join(root, name)
    os.makedirs(os.path.join(bag, "data"), exist_ok=True)
    lines, total = [], 0
    for i in range(count):
        rel = f"data/d{i // 1000:04d}/file-{i:07d}.txt"
        body = f"{i}\n".encode()
        if create:
            path = os.path.join(bag, rel)
            if i % 1000 == 0:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(body)
            total += len(body)
        lines.append(f"{hashlib.sha256(body).hexdigest()}  {rel}\n")
    tags(bag, "".join(lines).encode(), f"{total}.{count if create else 0}")

dir_bag("files-1m", files, True)
dir_bag("missing-1m", files, False)

bag = os.path.join(root, "line-50mb")
os.makedirs(os.path.join(bag, "data"), exist_ok=True)
tags(bag, ("0" * 64 + "  data/" + "x" * (50 << 20) + "\n").encode(), "0.0")

with zipfile.ZipFile(os.path.join(root, "zip-200k.zip"), "w", zipfile.ZIP_STORED) as z:
    lines = []
    for i in range(entries):
        rel = f"data/d{i // 1000:04d}/file-{i:07d}.txt"
        body = f"{i}\n".encode()
        z.writestr("zip-200k/" + rel, body)
        lines.append(f"{hashlib.sha256(body).hexdigest()}  {rel}\n")
    manifest = "".join(lines).encode()
    total = sum(len(f"{i}\n") for i in range(entries))
    info = f"Bag-Software-Agent: bench\nPayload-Oxum: {total}.{entries}\n".encode()
    tagfiles = {"bagit.txt": DECL, "bag-info.txt": info, "manifest-sha256.txt": manifest}
    for name, data in tagfiles.items():
        z.writestr("zip-200k/" + name, data)
    z.writestr("zip-200k/tagmanifest-sha256.txt", "".join(
        f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(tagfiles.items())))
PY

echo "| bag | verify exit | wall | peak RSS | target |"
echo "|---|---|---|---|---|"
for bag in files-1m missing-1m zip-200k.zip line-50mb; do
    warm "$BENCH_DIR/$bag"
    # Tampered bags exit 8 by design: record the code instead of failing the run.
    run "$bag" 1 bash -c '"$0" verify "$1" >/dev/null; echo "verify exit $?" >&2' "$CHATVAULT" "$BENCH_DIR/$bag"
    code=$(run_log "$bag" 1 | awk '/^verify exit/{print $3}')
    rss=$(max_rss_mb "$bag")
    echo "| $bag | ${code:-?} | $(fmt "$(med_secs "$bag")") s | $(fmt "$rss" 1) MB | < 64 MB: $(awk -v r="$rss" 'BEGIN{print (r<64)?"met":"MISSED"}') |"
done
bench_footer

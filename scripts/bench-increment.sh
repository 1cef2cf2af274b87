#!/usr/bin/env bash
# bench-increment: `export --after B1` of a simulated WeChat account (BENCH_MESSAGES,
# default 1,000,000 messages) to which BENCH_NEW (default 10,000) messages were added
# since B1, against a whole `export` of the same source, in the same rounds (target: the
# increment, with --no-changes, takes <= 10 % of the whole export's time), with peak RSS.
#
# Usage: scripts/bench-increment.sh      Env: CHATVAULT, BENCH_DIR, BENCH_ROUNDS (3),
#        BENCH_MESSAGES, BENCH_NEW.
source "$(dirname "$0")/bench-lib.sh"

bench_init
need_tool sqlite3
N=${BENCH_MESSAGES:-1000000}
NEW=${BENCH_NEW:-10000}
NOW=2025-06-01T00:00:00Z
SRC="$BENCH_DIR/src"

note "simulating wechat: $N messages"
"$CHATVAULT" simulate wechat --out "$SRC" --groups 20 --members 50 --messages "$N" \
    --seed 7 --now "$NOW" --no-media-files >/dev/null
"$CHATVAULT" export "$SRC" --out "$BENCH_DIR/b1" --no-media --fixed-time "$NOW" >/dev/null

note "adding $NEW messages after the last of each group"
sqlite3 "$SRC/EnMicroMsg.db" "
WITH RECURSIVE
  g(talker, last, k) AS (
    SELECT talker, MAX(createTime), ROW_NUMBER() OVER (ORDER BY talker) FROM message
    WHERE talker LIKE '%@chatroom' AND typeof(createTime) = 'integer' GROUP BY talker),
  n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $NEW / (SELECT COUNT(*) FROM g)),
  base(id) AS (SELECT MAX(msgId) FROM message)
INSERT INTO message (msgId, msgSvrId, type, status, isSend, createTime, talker, content)
SELECT base.id + g.k * 1000000 + n.i, 7000000000000 + g.k * 1000000 + n.i, 1, 2, 1,
       g.last + n.i * 1000, g.talker, 'new message ' || n.i
FROM g, n, base;"

for round in $(seq 1 "$BENCH_ROUNDS"); do
    sample_load
    # Each command starts with the previous one's writes on disk, so that neither pays for
    # the other's write-back.
    rm -rf "$BENCH_DIR/whole" "$BENCH_DIR/whole.sha256"
    sync
    warm "$SRC"
    run whole "$round" "$CHATVAULT" export "$SRC" --out "$BENCH_DIR/whole" --no-media --fixed-time "$NOW"
    rm -rf "$BENCH_DIR/inc" "$BENCH_DIR/inc.sha256"
    sync
    warm "$SRC" "$BENCH_DIR/b1"
    RUN_STDOUT=log run increment "$round" "$CHATVAULT" export "$SRC" --out "$BENCH_DIR/inc" \
        --no-media --fixed-time "$NOW" --after "$BENCH_DIR/b1" --no-changes
done
got=$(run_log increment 1 | sed -n 's/.*: \([0-9][0-9]*\) messages.*/\1/p' | head -n1)

echo "| $N WeChat messages, $got new | time | peak RSS | vs the whole export (same round) | target |"
echo "|---|---|---|---|---|"
echo "| whole \`export --no-media\` | $(fmt "$(med_secs whole)") s | $(fmt "$(max_rss_mb whole)" 1) MB | 1.00x | |"
r=$(ratio increment whole)
echo "| \`export --no-media --after B1\` | $(fmt "$(med_secs increment)") s | $(fmt "$(max_rss_mb increment)" 1) MB | $(fmt "$r")x | <= 0.10x: $(verdict "$r" "<=" 0.10) |"
bench_footer

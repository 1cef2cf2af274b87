//! WeChat only.

use std::collections::BTreeMap;

use crate::common::*;
use crate::suite::assert_matches_truth;
use crate::truth::wechat::SOURCE;

/// Rows far out of time order (a phone whose clock jumped back and forth) still come out
/// in (createTime, msgId) order per group, exported all together, one group at a time, or
/// a few at once.
#[test]
fn rows_out_of_time_order_are_exported_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "4", "--messages", "4000", "--seed", "11"],
    );
    {
        let conn = rusqlite::Connection::open(root.join("EnMicroMsg.db")).unwrap();
        // A third of the rows moved back by up to 200 days, others forward, in a pattern
        // that makes many interleaved ascending runs.
        conn.execute_batch(
            "UPDATE message SET createTime = createTime - (msgId * 7919 % 4800) * 3600000 \
               WHERE msgId % 3 = 0;
             UPDATE message SET createTime = createTime + (msgId % 7) * 86400000 \
               WHERE msgId % 5 = 1;",
        )
        .unwrap();
    }
    let bundle = dir.path().join("all");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
        "--no-media",
    ]);
    assert_matches_truth(&SOURCE, &root, &bundle, false);

    // One group alone is read through the index; the rows must be the same, in order.
    let whole = read_csv(&bundle.join("data/messages.csv"));
    let group = whole[0]["group_id"].clone();
    let single = dir.path().join("single");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        single.to_str().unwrap(),
        "--no-media",
        "--group",
        &group,
    ]);
    let ids = |rows: &[BTreeMap<String, String>]| -> Vec<String> {
        rows.iter()
            .filter(|r| r["group_id"] == group)
            .map(|r| r["message_id"].clone())
            .collect()
    };
    assert_eq!(
        ids(&read_csv(&single.join("data/messages.csv"))),
        ids(&whole)
    );
}

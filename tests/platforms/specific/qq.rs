//! QQ only.

use crate::common::*;
use crate::suite::{assert_counts_match, export};
use crate::truth::qq::{MSG_DB, SOURCE};

#[test]
fn malformed_rows_are_exported_as_other_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate("qq", dir.path(), "qq", SOURCE.small);
    let conn = rusqlite::Connection::open(root.join(MSG_DB)).unwrap();
    // A hostile body, a NULL body, text where a blob belongs, NULL columns, an unknown type.
    conn.execute_batch(
        r#"UPDATE group_msg_table SET "40800" = X'82F613FFFFFFFF0F41' WHERE rowid IN (SELECT rowid FROM group_msg_table WHERE "40011" = 2 LIMIT 1);
           UPDATE group_msg_table SET "40800" = NULL WHERE rowid IN (SELECT rowid FROM group_msg_table WHERE "40011" = 2 LIMIT 1 OFFSET 1);
           UPDATE group_msg_table SET "40800" = '<not protobuf>' WHERE rowid IN (SELECT rowid FROM group_msg_table WHERE "40011" = 2 LIMIT 1 OFFSET 2);
           UPDATE group_msg_table SET "40011" = 4242, "40012" = NULL, "40090" = NULL, "40093" = NULL WHERE rowid IN (SELECT rowid FROM group_msg_table WHERE "40011" = 2 LIMIT 1 OFFSET 3);
           UPDATE group_msg_table SET "40003" = NULL, "40013" = NULL WHERE rowid IN (SELECT rowid FROM group_msg_table LIMIT 5 OFFSET 10);"#,
    )
    .unwrap();
    drop(conn);
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &["--no-media"]);
    assert_counts_match(&SOURCE, &root, &bundle);
    let rows = read_csv(&bundle.join("data/messages.csv"));
    assert!(rows
        .iter()
        .any(|r| r["text"] == "<not protobuf>" && r["kind"] == "other"));
    assert!(rows
        .iter()
        .any(|r| r["raw_type"] == "4242" && r["kind"] == "other"));
    let others = rows.iter().filter(|r| r["kind"] == "other").count();
    assert!(others >= 4);
    let evidence = std::fs::read_to_string(bundle.join("evidence.json")).unwrap();
    assert!(evidence.contains("malformed message body"));
    assert!(evidence.contains("40800 is NULL"));
}

//! Every bad input gets a clear message and its own exit code, never a panic, and never
//! anything that looks like a finished export.

mod common;

use std::path::Path;

use common::*;

/// An export that must fail, and `inspect` failing the same way.
fn refused(source: &Path, out_dir: &Path, code: i32, message: &str) {
    export_fails(source, out_dir, code, message);
    let inspected = run(&["inspect", source.to_str().unwrap()]);
    assert_eq!(exit_code(&inspected), code);
}

fn sqlite_with(path: &Path, ddl: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(ddl).unwrap();
}

#[test]
fn a_path_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        &dir.path().join("nope"),
        dir.path(),
        3,
        "no such file or directory",
    );
}

#[test]
fn a_directory_with_no_chat_database() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("empty");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("notes.txt"), "hello").unwrap();
    refused(&src, dir.path(), 4, "no chat database found");
}

#[test]
fn a_file_instead_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("EnMicroMsg.db");
    std::fs::write(&file, "x").unwrap();
    refused(&file, dir.path(), 4, "is not a directory");
}

#[test]
fn a_database_that_is_not_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("wx");
    std::fs::create_dir(&src).unwrap();
    // What an encrypted (SQLCipher) database looks like: random bytes.
    std::fs::write(
        src.join("EnMicroMsg.db"),
        (0..8192u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    refused(&src, dir.path(), 5, "is not an SQLite database");
}

#[test]
fn a_truncated_database() {
    let dir = tempfile::tempdir().unwrap();
    let src = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "2", "--messages", "3000", "--no-media-files"],
    );
    let db = src.join("EnMicroMsg.db");
    let len = std::fs::metadata(&db).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.set_len(len / 2).unwrap();
    refused(&src, dir.path(), 5, "truncated");
}

#[test]
fn another_apps_database() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    std::fs::create_dir(&src).unwrap();
    sqlite_with(
        &src.join("app.db"),
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);",
    );
    refused(&src, dir.path(), 4, "no chat database found");

    // Another app's tables under WeChat's file name.
    let named = dir.path().join("named");
    std::fs::create_dir(&named).unwrap();
    sqlite_with(
        &named.join("EnMicroMsg.db"),
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);",
    );
    refused(
        &named,
        dir.path(),
        5,
        "not a wechat database: no table `message` in EnMicroMsg.db",
    );
}

#[test]
fn a_missing_table_or_column() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("wx");
    std::fs::create_dir(&src).unwrap();
    sqlite_with(
        &src.join("EnMicroMsg.db"),
        "CREATE TABLE rcontact(username TEXT PRIMARY KEY, alias TEXT, conRemark TEXT, nickname TEXT, type INT);",
    );
    refused(&src, dir.path(), 5, "no table `message`");

    let cols = dir.path().join("cols");
    std::fs::create_dir(&cols).unwrap();
    sqlite_with(
        &cols.join("EnMicroMsg.db"),
        "CREATE TABLE rcontact(username TEXT PRIMARY KEY, alias TEXT, conRemark TEXT, nickname TEXT, type INT);
         CREATE TABLE message(msgId INTEGER PRIMARY KEY, type INT, createTime INTEGER, talker TEXT, content TEXT);",
    );
    refused(&cols, dir.path(), 5, "has no column `msgSvrId`");
}

#[test]
fn a_database_locked_by_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let src = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "2", "--messages", "200", "--no-media-files"],
    );
    let conn = rusqlite::Connection::open(src.join("EnMicroMsg.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode=DELETE; BEGIN EXCLUSIVE;")
        .unwrap();
    refused(&src, dir.path(), 6, "locked by another process");
    conn.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn an_unknown_group_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let src = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "2", "--messages", "200", "--no-media-files"],
    );
    let out = dir.path().join("b");
    let r = run(&[
        "export",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--group",
        "nope@chatroom",
    ]);
    assert_eq!(exit_code(&r), 3);
    assert!(String::from_utf8_lossy(&r.stderr).contains("no group `nope@chatroom`"));
    let r = run(&[
        "export",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--since",
        "yesterday",
    ]);
    assert_eq!(exit_code(&r), 2);
    assert!(!out.exists());
}

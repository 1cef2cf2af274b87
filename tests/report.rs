//! The report, `data/html/index.html`, vouches for the bundle: its hash annex is the
//! payload manifest (less the report itself), its source table is evidence.json's, its
//! figures per conversation are those of messages.csv and members.csv, its warnings are
//! evidence.json's; and it prints, in real headless Chromium, to a PDF whose text holds the
//! page numbers, the group name, a message and the annex.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use common::*;

const PLATFORMS: [&str; 4] = ["wechat", "qq", "wecom", "dingtalk"];
const CASE: &str = "案件 <A&B> 7";
const EXAMINER: &str = "Li \"Q\" 李";

fn exported(platform: &str, dir: &Path) -> PathBuf {
    let root = simulate(
        platform,
        dir,
        "src",
        &[
            "--groups",
            "3",
            "--messages",
            "1200",
            "--edge-rate",
            "0.3",
            "--seed",
            "8",
        ],
    );
    let bundle = dir.join("bundle");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
        "--format",
        "csv,jsonl,txt,html",
        "--case-id",
        CASE,
        "--examiner",
        EXAMINER,
        "--include-private",
    ]);
    bundle
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len();
    let to = from + text[from..].find(end).unwrap_or_else(|| panic!("no {end}"));
    &text[from..to]
}

/// `html` without its tags (`<code>id</code>` → `id`).
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The rows of an HTML table's body as cell texts (header rows, of `<th>`, left out).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .split("<tr>")
        .skip(1)
        .filter(|row| row.starts_with("<td"))
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = &cell[cell.find('>').unwrap() + 1..];
                    unescape(&strip_tags(&cell[..cell.find("</td>").unwrap()]))
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_report_vouches_for_the_payload_the_sources_and_the_figures() {
    for platform in PLATFORMS {
        let dir = tempfile::tempdir().unwrap();
        let bundle = exported(platform, dir.path());
        let report = std::fs::read_to_string(bundle.join("data/html/index.html")).unwrap();
        let evidence: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("evidence.json")).unwrap()).unwrap();

        // Case fields, escaped, and recorded alike in evidence.json and bag-info.txt.
        assert!(report.contains(&escape(CASE)), "{platform}");
        assert!(report.contains(&escape(EXAMINER)), "{platform}");
        assert_eq!(evidence["case"]["id"], CASE);
        assert_eq!(evidence["case"]["examiner"], EXAMINER);
        let bag_info = std::fs::read_to_string(bundle.join("bag-info.txt")).unwrap();
        assert!(bag_info.contains(&format!("Chatvault-Case-Id: {CASE}\n")));

        // The annex is the payload manifest, less the report itself, with true sizes.
        let annex = rows(between(
            &report,
            "<h2>Hash annex</h2>",
            "<h3>Source media files</h3>",
        ));
        let annexed: BTreeMap<String, (String, String)> = annex
            .iter()
            .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
            .collect();
        assert_eq!(annexed.len(), annex.len(), "{platform}: a path twice");
        let manifest: BTreeMap<String, (String, String)> =
            std::fs::read_to_string(bundle.join("manifest-sha256.txt"))
                .unwrap()
                .lines()
                .map(|l| {
                    let (sha, path) = l.split_once("  ").unwrap();
                    let size = std::fs::metadata(bundle.join(path)).unwrap().len();
                    (path.to_string(), (size.to_string(), sha.to_string()))
                })
                .filter(|(path, _)| path != "data/html/index.html")
                .collect();
        assert!(manifest.keys().any(|p| p.ends_with("messages.jsonl")));
        assert!(manifest.keys().any(|p| p.starts_with("data/txt/")));
        assert_eq!(annexed, manifest, "{platform}");

        // Every source file with its hashes before and after, as evidence.json has them.
        let sources = evidence["sources"].as_array().unwrap();
        assert!(!sources.is_empty());
        let mut shown = rows(between(&report, "<h2>Source files</h2>", "</table>"));
        shown.extend(rows(between(
            &report,
            "<h3>Source media files</h3>",
            "</table>",
        )));
        let shown: Vec<Vec<String>> = shown;
        for source in sources {
            let row = vec![
                source["path"].as_str().unwrap().to_string(),
                source["size"].to_string(),
                source["sha256_before"].as_str().unwrap().to_string(),
                source["sha256_after"].as_str().unwrap().to_string(),
            ];
            assert!(shown.contains(&row), "{platform}: {row:?}");
        }
        assert_eq!(shown.len(), sources.len(), "{platform}");

        // Every warning.
        let total = evidence["warnings_total"].as_u64().unwrap();
        assert!(total > 0, "{platform}");
        assert!(report.contains(&format!("<h2>Warnings ({total})</h2>")));
        let listed = between(&report, &format!("<h2>Warnings ({total})</h2>"), "<h2>")
            .matches("<li>")
            .count();
        assert_eq!(listed, evidence["warnings"].as_array().unwrap().len());

        // Each conversation's figures and charts, from messages.csv and members.csv.
        let messages = read_csv(&bundle.join("data/messages.csv"));
        let members = read_csv(&bundle.join("data/members.csv"));
        let groups = read_csv(&bundle.join("data/groups.csv"));
        assert!(groups.len() >= 3, "{platform}");
        for group in &groups {
            let id = &group["group_id"];
            let mine: Vec<_> = messages.iter().filter(|m| &m["group_id"] == id).collect();
            let roster: Vec<_> = members.iter().filter(|m| &m["group_id"] == id).collect();
            let left = roster.iter().filter(|m| m["left"] == "true").count();
            let note = format!(
                "id <code>{}</code> · {} members ({left} left) · {} messages",
                escape(id),
                roster.len(),
                mine.len()
            );
            let section = between(&report, &note, "</section>");
            // Messages per day: every dated message is in a bar.
            let per_day: u64 = between(section, "<h4>Messages per day</h4>", "</svg>")
                .split("</title>")
                .filter_map(|t| {
                    t.rsplit(": ")
                        .next()?
                        .strip_suffix(" messages")?
                        .parse::<u64>()
                        .ok()
                })
                .sum();
            let dated = mine.iter().filter(|m| !m["time_utc"].is_empty()).count();
            assert_eq!(per_day, dated as u64, "{platform} {id}");
            // Top senders: the ten largest message counts by sender.
            let mut by_sender: HashMap<&str, u64> = HashMap::new();
            for m in mine.iter().filter(|m| m["direction"] != "system") {
                *by_sender.entry(m["sender_id"].as_str()).or_default() += 1;
            }
            let mut expected: Vec<u64> = by_sender.into_values().collect();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            expected.truncate(10);
            let drawn: Vec<u64> = between(section, "<h4>Top senders</h4>", "</svg>")
                .split("fill=\"#6a4\"/>")
                .skip(1)
                .map(|t| between(t, ">", "</text>").parse().unwrap())
                .collect();
            assert_eq!(drawn, expected, "{platform} {id}");
            // The roster: every member with role and whether they left.
            let table = rows(between(section, "<h4>Members</h4>", "</table>"));
            assert_eq!(table.len(), roster.len(), "{platform} {id}");
            for (row, member) in table.iter().zip(&roster) {
                assert_eq!(row[1], member["member_id"]);
                assert_eq!(row[3], member["role"]);
                assert_eq!(row[5] == "left", member["left"] == "true");
            }
        }
    }
}

/// `pdftotext`'s words joined: table cells and lines break where the layout does.
fn joined(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn print_to_pdf(browser: &Path, page: &Path, pdf: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    chromium_run(
        browser,
        profile.path(),
        &[
            "--no-pdf-header-footer",
            &format!("--print-to-pdf={}", pdf.display()),
        ],
        &url,
    );
    let pdftotext = tool("pdftotext").expect("pdftotext (poppler-utils)");
    let out = std::process::Command::new(pdftotext)
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_report_and_a_transcript_page_print_to_pdf() {
    let (Some(browser), Some(_)) = (tool("chromium"), tool("pdftotext")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = exported("wechat", dir.path());
    let groups = read_csv(&bundle.join("data/groups.csv"));
    let group = groups
        .iter()
        .filter(|g| g["group_name"].chars().count() >= 3)
        .max_by_key(|g| g["message_count"].parse::<u64>().unwrap())
        .unwrap();
    let name = joined(&group["group_name"]);

    let text = print_to_pdf(
        &browser,
        &bundle.join("data/html/index.html"),
        &dir.path().join("report.pdf"),
    );
    let flat = joined(&text);
    assert!(text.contains("page 1 of "), "no page numbers");
    assert!(flat.contains("Exportreport"));
    assert!(flat.contains(&joined(CASE)), "case");
    assert!(flat.contains(&name), "group name {name}");
    let manifest = std::fs::read_to_string(bundle.join("manifest-sha256.txt")).unwrap();
    let csv_hash = manifest
        .lines()
        .find(|l| l.ends_with("  data/messages.csv"))
        .unwrap()
        .split_once("  ")
        .unwrap()
        .0;
    assert!(
        flat.contains("Hashannex") && flat.contains(csv_hash),
        "annex"
    );

    // A transcript page: the group's name heads every printed page.
    let messages = read_csv(&bundle.join("data/messages.csv"));
    let stem = bundle
        .join("data/html")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p.join("index.html")).is_ok_and(|index| {
                index.contains(&format!("<h1>{}</h1>", escape(&group["group_name"])))
            })
        })
        .unwrap();
    let text = print_to_pdf(
        &browser,
        &stem.join("0001.html"),
        &dir.path().join("page.pdf"),
    );
    let pages: usize = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("page 1 of "))
        .expect("page numbers")
        .parse()
        .unwrap();
    assert!(pages > 1);
    let flat = joined(&text);
    assert!(flat.matches(&name).count() > pages, "a header per page");
    let message = messages
        .iter()
        .filter(|m| m["group_id"] == group["group_id"] && m["kind"] == "text")
        .map(|m| m["text"].clone())
        .find(|t| t.chars().count() >= 6 && t.chars().all(|c| c.is_alphanumeric() || c == ' '))
        .expect("a plain text message");
    assert!(flat.contains(&joined(&message)), "{message}");
}

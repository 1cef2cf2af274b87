#!/usr/bin/env python3
"""Extracts seed inputs for the fuzz targets from simulated account directories.

Usage: make_seeds.py SIM_DIR CORPUS_DIR [OUT_DIR], where SIM_DIR holds wechat/, qq/,
wecom/ and dingtalk/ made by `chatvault simulate <platform> --out SIM_DIR/<platform>
--messages 200 --seed 1`, and OUT_DIR a small exported bundle (bag/, bag.zip, bag.sha256),
plans from `chatvault plan` (plan-*.json) and `chatvault policy --dump` (policy.toml).
Per target, a few rows of every message type (at most PER_KIND), each file <= 64 KB, in
the input layouts src/fuzz_api.rs documents.
"""
import hashlib
import json
import os
import sqlite3
import sys

PER_KIND = 3
MAX_SIZE = 64 * 1024


def b(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def write(corpus, target, data):
    if len(data) > MAX_SIZE:
        return
    directory = os.path.join(corpus, target)
    os.makedirs(directory, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def per_kind(rows, kind_of):
    seen = {}
    for row in rows:
        kind = kind_of(row)
        if seen.get(kind, 0) < PER_KIND:
            seen[kind] = seen.get(kind, 0) + 1
            yield row


def nul_joined(fields):
    # Trailing NULL fields are left off (a missing part reads as NULL).
    while fields and fields[-1] is None:
        fields.pop()
    return b"\0".join(f if f is not None else b"" for f in fields)


def wechat(sim, corpus):
    db = sqlite3.connect(os.path.join(sim, "wechat", "EnMicroMsg.db"))
    db.text_factory = bytes
    rows = db.execute(
        "SELECT m.type, m.content, m.imgPath, "
        "(SELECT i.bigImgPath FROM ImgInfo2 i WHERE i.msgSvrId = m.msgSvrId LIMIT 1), "
        "(SELECT a.fileFullPath FROM appattach a WHERE a.msgInfoId = m.msgId LIMIT 1), "
        "(SELECT a.totalLen FROM appattach a WHERE a.msgInfoId = m.msgId LIMIT 1) "
        "FROM message m ORDER BY m.msgId"
    ).fetchall()
    for row in per_kind(rows, lambda r: r[0]):
        write(corpus, "wechat_message", nul_joined([b(v) for v in row]))
        content = b(row[1]) or b""
        if b"<" in content:
            # Sender prefix off, if any: the payload alone.
            payload = content.split(b"\n", 1)[1] if b":\n" in content[:80] else content
            write(corpus, "wechat_xml", b"msg type\n" + payload)


def qq(sim, corpus):
    db = sqlite3.connect(os.path.join(sim, "qq", "nt_db", "nt_msg.db"))
    rows = db.execute('SELECT "40011", "40800" FROM group_msg_table ORDER BY rowid').fetchall()
    for msg_type, body in per_kind(rows, lambda r: r[0]):
        if body is not None:
            write(corpus, "qq_body", b(body))


def wecom(sim, corpus):
    archive = os.path.join(sim, "wecom", "archive")
    lines = []
    for name in sorted(os.listdir(archive)):
        with open(os.path.join(archive, name), "rb") as f:
            lines.extend(f.read().split(b"\n"))
    def kind(line):
        for key in (b'"msgtype":"', b'"action":"'):
            at = line.find(key)
            if at >= 0:
                return line[at:at + 30]
        return line[:10]
    for line in per_kind([l for l in lines if l.strip()], kind):
        write(corpus, "wecom_record", line + b"\n")


def dingtalk(sim, corpus):
    db = sqlite3.connect(os.path.join(sim, "dingtalk", "DBFiles", "dingtalk.db"))
    db.text_factory = bytes
    tables = [t for (t,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tbmsg_%'")]
    rows = []
    for table in tables:
        columns = [c[1] for c in db.execute(f'PRAGMA table_info("{table.decode()}")')]
        attachments = "attachments" if b"attachments" in columns else "NULL"
        rows += db.execute(
            f'SELECT contentType, content, {attachments} FROM "{table.decode()}"').fetchall()
    for content_type, content, attachments in per_kind(rows, lambda r: r[0]):
        write(corpus, "dingtalk_content", nul_joined([b(content), b(attachments)]))


def bundle_seeds(out, corpus):
    """bag_dir and bag_zip seeds from a small exported bundle OUT/bag (+ bag.zip)."""
    bag = os.path.join(out, "bag")
    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
    tags = [read(os.path.join(bag, n)) for n in
            ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt",
             "evidence.json")]
    sidecar = read(os.path.join(out, "bag.sha256")) or b""
    payload = []
    for name in sorted(os.listdir(os.path.join(bag, "data"))):
        payload.append(name.encode() + b"\n" + read(os.path.join(bag, "data", name)))
    whole = b"\0".join(tags + [sidecar] + payload)
    write(corpus, "bag_dir", whole)
    write(corpus, "bag_dir", b"\0".join(tags))
    write(corpus, "bag_dir", b"\0".join(tags[:2]))
    zipped = read(os.path.join(out, "bag.zip"))
    if zipped:
        write(corpus, "bag_zip", zipped)
    # bagit_tags: bagit.txt, bag-info.txt, the manifest, no fetch.txt.
    write(corpus, "bagit_tags", b"\0".join(t or b"" for t in tags[:3]))


def bagit_tag_seeds(corpus):
    """bagit_tags seeds: the declarations, manifests and fetch lines other tools write,
    and the broken and hostile forms of each."""
    md5 = b"b1946ac92492d2347c6235b4d2611184"
    declarations = [
        b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
        b"BagIt-Version: 1.0\r\nTag-File-Character-Encoding: UTF-16",
        b"\xef\xbb\xbfBagIt-Version : .97\nTag-File-Character-Encoding : ISO-8859-1 \n\n",
    ]
    infos = [
        b"Payload-Oxum: 6.1\nExternal-Description: a\n  continued\n",
        b"Test-Tag    :   5\n  \n: empty\nPayload-Oxum: 1.1\nPayload-Oxum: x\n",
    ]
    manifests = [
        md5 + b"  data/hello.txt\n" + md5 + b" *data/a%0Ab%25c\r" + md5 + b"\t./data/x y\r\n",
        md5 + b"  ../../../README.md\n" + md5 + b"  \\\\?\\UNC\\s\\x\n" + md5 + b"  ~root/x\n",
        b"\xff\xfe" + "d41d8cd98f00b204e9800998ecf8427e  data/\u00e9\n".encode("utf-16-le"),
        b"zz data/x\n" + md5 + b"\n" + md5 + b"  C:\\x\n",
    ]
    fetches = [
        b"https://example.org/a - data/a\nhttp://x 12 data/b c\n",
        b"https://e.org - /tmp/x\nno-scheme - data/x\nhttp://x 1k data/y\n",
    ]
    for d in declarations:
        for i in infos:
            for m in manifests:
                for f in fetches:
                    write(corpus, "bagit_tags", b"\0".join([d, i, m, f]))


def file_seeds(paths, corpus, target):
    for path in paths:
        with open(path, "rb") as f:
            write(corpus, target, f.read())


def small_seeds(corpus):
    bagit_tag_seeds(corpus)
    _small_seeds(corpus)


def _small_seeds(corpus):
    """Hand-written seeds: sha256sum lines, time arguments, a trimmed plan."""
    abc = b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    for data in [
        abc + b"  messages.csv\n" + abc + b" *media/a b.jpg\n",
        b"\\" + abc + b"  back\\\\slash\\nnew line\n",
        b"SHA256 (data/x (1).txt) = " + abc.upper() + b"\n",
        b"not a line\n\n" + abc + b"  \n",
    ]:
        write(corpus, "sha256sum", data)
    for data in [b"2025-06-12T08:05:20+08:00", b"2025-06-12T08:05:20.123456789Z",
                 b"2025-06-12 08:05:20", b"2025-06-12 08:05", b"2025-06-12",
                 b"1749686720", b"-62167219200", b"+08:00", b"-0530", b"+8", b"Z", b"UTC",
                 b"9999-12-31T23:59:59.999Z"]:
        write(corpus, "time_args", data)
    for data in [
        b'[[rule]]\nid = "wechat.chat.roaming"\nperiod = "7 days"\n',
        b'version = 1\n[keywords]\nfamily = ["\xe5\xae\xb6"]\n[[rule]]\nid = "wechat.group_file"\n'
        b'period = "none"\nnote = "x"\n',
        b'[[rule]]\nid = "qq.roaming"\nperiod = "3y"\nkind = "platform"\n',
    ]:
        write(corpus, "policy_toml", data)
    plan_dir = os.path.join(corpus, "plan_json")
    for name in sorted(os.listdir(plan_dir)):
        with open(os.path.join(plan_dir, name), "rb") as f:
            plan = json.loads(f.read())
        if len(plan["entries"]) > 3:
            plan["entries"] = plan["entries"][:3]
            write(corpus, "plan_json", json.dumps(plan, ensure_ascii=False).encode())


def main():
    sim, corpus = sys.argv[1], sys.argv[2]
    wechat(sim, corpus)
    qq(sim, corpus)
    wecom(sim, corpus)
    dingtalk(sim, corpus)
    if len(sys.argv) > 3:
        # OUT_DIR: bag/, bag.zip, bag.sha256, plan-*.json, policy.toml.
        out = sys.argv[3]
        bundle_seeds(out, corpus)
        file_seeds([os.path.join(out, n) for n in sorted(os.listdir(out))
                    if n.startswith("plan-") and n.endswith(".json")], corpus, "plan_json")
        file_seeds([os.path.join(out, "policy.toml")], corpus, "policy_toml")
    small_seeds(corpus)


if __name__ == "__main__":
    main()

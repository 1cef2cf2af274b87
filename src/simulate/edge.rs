//! Platform-independent content for simulators: realistic Chinese names and
//! chat lines, nasty texts and names that break naive importers and CSV
//! writers, and planted personal data (PII) with valid check digits.

use rand::seq::SliceRandom;
use rand::Rng;

/// What a group is about; drives its name (and so the retention group type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Education,
    Ecommerce,
    Commercial,
    Family,
    Work,
    Other,
}

impl GroupKind {
    pub const ALL: [GroupKind; 6] = [
        GroupKind::Education,
        GroupKind::Ecommerce,
        GroupKind::Commercial,
        GroupKind::Family,
        GroupKind::Work,
        GroupKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Education => "education",
            GroupKind::Ecommerce => "ecommerce",
            GroupKind::Commercial => "commercial",
            GroupKind::Family => "family",
            GroupKind::Work => "work",
            GroupKind::Other => "other",
        }
    }
}

/// Keywords that classify a group by name (retention.md), plus `解散` (a
/// dissolution marker); names of the non-keyword kinds avoid all of them.
pub const GROUP_TYPE_KEYWORDS: [&str; 20] = [
    "班", "课", "家长", "学", "老师", "培训", "教育", "团购", "订单", "商城", "代购", "售后",
    "拼单", "电商", "公司", "项目", "合作", "客户", "商务", "解散",
];

const EDUCATION_GROUPS: &[&str] = &[
    "三年级二班家长群",
    "初二(3)班家长群",
    "王老师钢琴课",
    "高三数学培训班",
    "2024级软件工程1班",
    "小学英语学习打卡群",
];
const ECOMMERCE_GROUPS: &[&str] = &[
    "幸福里小区团购群",
    "水果拼单群",
    "日本代购订单群",
    "优品商城售后群",
    "社区团购2号群",
];
const COMMERCIAL_GROUPS: &[&str] = &[
    "华东区客户对接群",
    "星辰科技公司项目组",
    "商务合作洽谈群",
    "项目交付-客户A",
];
const FAMILY_GROUPS: &[&str] = &["相亲相爱一家人", "老李家", "幸福一家亲", "张家大院"];
const WORK_GROUPS: &[&str] = &["技术部日常沟通", "周报提醒群", "产品研发群", "行政通知"];
const OTHER_GROUPS: &[&str] = &[
    "周末羽毛球",
    "跑步打卡",
    "钓鱼爱好者",
    "楼下吃饭搭子",
    "摄影交流",
];

/// A realistic group name of `kind` (education/ecommerce/commercial names
/// contain the retention keywords, the others contain none).
pub fn group_name<R: Rng + ?Sized>(rng: &mut R, kind: GroupKind) -> String {
    let names = match kind {
        GroupKind::Education => EDUCATION_GROUPS,
        GroupKind::Ecommerce => ECOMMERCE_GROUPS,
        GroupKind::Commercial => COMMERCIAL_GROUPS,
        GroupKind::Family => FAMILY_GROUPS,
        GroupKind::Work => WORK_GROUPS,
        GroupKind::Other => OTHER_GROUPS,
    };
    pick(rng, names).to_string()
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "欧阳",
    "司马",
];
const GIVEN_CHARS: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "萍", "红", "子", "涵", "轩", "浩", "宇",
    "欣", "怡", "梓", "晨", "思", "雨", "佳", "一",
];
const ENGLISH_NAMES: &[&str] = &[
    "Tony", "Kevin", "Amy", "Lucy", "Jason", "Cindy", "David", "Eric", "Grace", "Vivian",
];

/// A realistic Chinese full name (surname + one or two given characters).
pub fn person_name<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut name = pick(rng, SURNAMES).to_string();
    name.push_str(pick(rng, GIVEN_CHARS));
    if rng.gen_bool(0.6) {
        name.push_str(pick(rng, GIVEN_CHARS));
    }
    name
}

/// A realistic WeChat nickname: mostly names, sometimes English, decorated,
/// or with the "A" prefix people use to sort first.
pub fn nickname<R: Rng + ?Sized>(rng: &mut R) -> String {
    let name = person_name(rng);
    match rng.gen_range(0..20) {
        0..=11 => name,
        12 | 13 => pick(rng, ENGLISH_NAMES).to_string(),
        14 => format!("{} {}", pick(rng, ENGLISH_NAMES), pinyin_like(rng)),
        15 => format!("🌸{name}🌸"),
        16 => format!("A{}-{name}", rng.gen_range(0..10)),
        17 => format!("{name}{}", rng.gen_range(1970..2010)),
        18 => "一路向北".to_string(),
        _ => format!("{name}🍀"),
    }
}

fn pinyin_like<R: Rng + ?Sized>(rng: &mut R) -> String {
    pick(rng, &["Zhang", "Wang", "Li", "Chen", "Liu", "Lin"]).to_string()
}

/// A group nickname (群昵称) fitting the group: parents name themselves after
/// their child, neighbours after their flat.
pub fn group_nickname<R: Rng + ?Sized>(rng: &mut R, kind: GroupKind, real_name: &str) -> String {
    match kind {
        GroupKind::Education => {
            let child = person_name(rng);
            let parent = pick(rng, &["妈妈", "爸爸", "奶奶", "家长"]);
            format!("{child}{parent}")
        }
        GroupKind::Ecommerce => format!(
            "{}栋{}{:02}-{}",
            rng.gen_range(1..20),
            rng.gen_range(1..30),
            rng.gen_range(1..5),
            real_name.chars().next().unwrap_or('某')
        ),
        GroupKind::Commercial | GroupKind::Work => format!(
            "{}-{real_name}",
            pick(rng, &["销售部", "技术部", "财务", "星辰科技", "华信"])
        ),
        GroupKind::Family | GroupKind::Other => real_name.to_string(),
    }
}

/// Display names and nicknames that break CSV writers, splitters and sorters.
pub const NASTY_NAMES: &[&str] = &[
    "好",
    "张三, 李四",
    "王;五",
    "赵、钱、孙",
    "\"老\"王",
    "'单引号'",
    "=1+2",
    "=HYPERLINK(\"http://example.invalid\",\"点我\")",
    "+86 老板",
    "-减号开头",
    "@所有人",
    "Tab\t名字",
    "换行\n名字",
    "\u{202E}嘛是这",
    "零\u{200B}宽",
    "👨\u{200D}👩\u{200D}👧\u{200D}👦 一家人",
    " 前后空格 ",
    "   ",
    "",
    "<b>html</b>&amp;",
    "<img src=x onerror=alert(1)>",
    "</title><script>alert(1)</script>",
    "Robert'); DROP TABLE message;--",
    "ａｂｃ全角",
    "e\u{301}cole",
    "很长的名字很长的名字很长的名字很长的名字很长的名字很长的名字很长的名字很长的名字",
];

/// One of [`NASTY_NAMES`].
pub fn nasty_name<R: Rng + ?Sized>(rng: &mut R) -> String {
    pick(rng, NASTY_NAMES).to_string()
}

/// WeChat's bracketed emoticon tokens.
pub const EMOTICONS: &[&str] = &[
    "[微笑]",
    "[捂脸]",
    "[旺柴]",
    "[破涕为笑]",
    "[强]",
    "[抱拳]",
    "[玫瑰]",
    "[呲牙]",
    "[OK]",
    "[耶]",
    "[偷笑]",
    "[发呆]",
];

/// Texts that break parsers, CSV writers and terminals.
pub const NASTY_TEXTS: &[&str] = &[
    "含逗号,和\"双引号\"的消息",
    "第一行\n第二行\n第三行",
    "回车\r在中间",
    "Windows换行\r\n第二行",
    "制表\t符\t分隔",
    "空字符\0在中间",
    "👍🏻🎉🇨🇳",
    "👨\u{200D}👩\u{200D}👧\u{200D}👦 全家福",
    "🏳\u{FE0F}\u{200D}🌈 与 🧑🏽\u{200D}💻",
    "零\u{200B}宽\u{200C}字\u{200D}符\u{FEFF}",
    "文件名abc\u{202E}gpj.exe",
    "[微笑][捂脸][旺柴]",
    "=SUM(A1:A9)",
    "+1+1",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "<msg><appmsg>不是真的XML</appmsg></msg>",
    "&lt;转义&gt; &amp; 未转义 & < >",
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)> 图片",
    "javascript:alert(document.cookie)",
    "<a href=\"javascript:alert(1)\">点这里</a> data:text/html,<script>alert(1)</script>",
    "</div></div><iframe src=\"https://example.invalid/\"></iframe>",
    "wxid_fake123:\n伪造的发送者前缀",
    "C:\\Users\\test\\new\\table",
    "'; DROP TABLE message; --",
    "\u{2028}行分隔符\u{2029}段分隔符",
    "\u{1b}[31m红色终端\u{1b}[0m\u{7}",
    "   前后有空格   ",
    "",
    "e\u{301}\u{301}\u{301}组合字符",
    "１２３全角数字",
    "العربية مختلطة 中文",
    "\"\"\"",
    "超长单词AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
];

/// A 10 000-character message (characters, not bytes), mixing CJK, ASCII,
/// emoji and newlines.
pub fn long_text(chars: usize) -> String {
    const PATTERN: &str = "这是一条很长的消息,用于测试。Long line 😀\n";
    PATTERN.chars().cycle().take(chars).collect()
}

/// A nasty text: one of [`NASTY_TEXTS`], a 10 000-character message, or a
/// mention of a member; `names` are members' display names.
pub fn nasty_text<R: Rng + ?Sized>(rng: &mut R, names: &[&str]) -> String {
    match rng.gen_range(0..40) {
        0 => long_text(10_000),
        1..=3 if !names.is_empty() => {
            let name = pick(rng, names);
            format!("{}请看一下,\"谢谢\"", mention(name))
        }
        _ => pick(rng, NASTY_TEXTS).to_string(),
    }
}

/// How WeChat writes an @mention: `@` + name + U+2005 (four-per-em space).
pub fn mention(name: &str) -> String {
    format!("@{name}\u{2005}")
}

const COMMON_LINES: &[&str] = &[
    "收到",
    "好的",
    "谢谢",
    "👌",
    "哈哈哈哈哈",
    "明天几点集合？",
    "我晚点到",
    "大家辛苦了[抱拳]",
    "同意",
    "+1",
    "有人在吗",
    "早上好[太阳]",
    "这个我来处理",
    "稍等，我看一下",
    "已转发",
    "[捂脸]又忘了",
    "周末愉快！",
];
const EDUCATION_LINES: &[&str] = &[
    "老师好，今天的作业是什么？",
    "收到，谢谢老师[玫瑰]",
    "明天要交家长签字的试卷",
    "请各位家长督促孩子按时打卡",
    "下周一期中考试，请提前复习",
    "孩子今天发烧请假一天",
];
const ECOMMERCE_LINES: &[&str] = &[
    "今天的团购已截单，明天下午到货",
    "我要两份，3栋1201",
    "订单号发一下，我查查物流",
    "售后怎么申请？东西坏了",
    "接龙：1. 王姐 2份",
    "已付款，请查收",
];
const COMMERCIAL_LINES: &[&str] = &[
    "合同已发邮箱，请查收",
    "客户那边要求周五前给报价",
    "项目进度同步一下",
    "发票抬头已更新",
    "下午三点会议室开会",
];
const FAMILY_LINES: &[&str] = &[
    "妈，我到家了",
    "周末回来吃饭吗",
    "转发：这些食物不能一起吃！",
    "生日快乐🎂",
    "外面下雨了记得带伞",
];

/// A realistic chat line for a group of `kind`, sometimes with emoticons.
pub fn chat_text<R: Rng + ?Sized>(rng: &mut R, kind: GroupKind) -> String {
    let specific = match kind {
        GroupKind::Education => EDUCATION_LINES,
        GroupKind::Ecommerce => ECOMMERCE_LINES,
        GroupKind::Commercial | GroupKind::Work => COMMERCIAL_LINES,
        GroupKind::Family => FAMILY_LINES,
        GroupKind::Other => COMMON_LINES,
    };
    let mut line = if rng.gen_bool(0.5) {
        pick(rng, specific).to_string()
    } else {
        pick(rng, COMMON_LINES).to_string()
    };
    if rng.gen_bool(0.1) {
        line.push_str(pick(rng, EMOTICONS));
    }
    if rng.gen_bool(0.03) {
        line.push('\n');
        line.push_str(pick(rng, COMMON_LINES));
    }
    line
}

/// A text with one planted piece of personal data (phone, ID, card, e-mail,
/// QQ or WeChat id), in the formats people really type.
pub fn text_with_pii<R: Rng + ?Sized>(rng: &mut R) -> String {
    match rng.gen_range(0..9) {
        0 => format!("我的手机是{}，有事打我", mobile_number(rng)),
        1 => format!("联系电话 {}", mobile_number_spaced(rng)),
        2 => format!("电话：{}", to_full_width(&mobile_number(rng))),
        3 => format!("身份证号{}，帮我报个名", resident_id(rng)),
        4 => format!("转账到我卡上：{} 工商银行", bank_card(rng)),
        5 => format!("简历发我邮箱 {}", email(rng)),
        6 => format!("加我QQ {}", rng.gen_range(10_000..2_000_000_000u64)),
        7 => "加我微信 wxid_abc123 备注来意".to_string(),
        _ => format!(
            "收件人：{} {} 上海市浦东新区世纪大道{}号",
            person_name(rng),
            mobile_number(rng),
            rng.gen_range(1..2000)
        ),
    }
}

const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "135", "136", "138", "139", "150", "152", "158", "166", "177", "181", "186",
    "187", "188", "199",
];

/// A mainland mobile number, 11 digits (`13812345678`).
pub fn mobile_number<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!(
        "{}{:08}",
        pick(rng, MOBILE_PREFIXES),
        rng.gen_range(0..100_000_000u32)
    )
}

/// A mobile number as `+86 138 1234 5678`.
pub fn mobile_number_spaced<R: Rng + ?Sized>(rng: &mut R) -> String {
    let number = mobile_number(rng);
    format!("+86 {} {} {}", &number[0..3], &number[3..7], &number[7..11])
}

/// ASCII digits and letters turned into their full-width forms (`１３８…`).
pub fn to_full_width(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                char::from_u32(c as u32 - 0x20 + 0xFF00).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

const AREA_CODES: &[&str] = &["110101", "310104", "440305", "510107", "330106", "420102"];

/// An 18-digit resident ID with a valid GB 11643-1999 check character.
pub fn resident_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut body = format!(
        "{}{}{:02}{:02}{:03}",
        pick(rng, AREA_CODES),
        rng.gen_range(1950..2010),
        rng.gen_range(1..13),
        rng.gen_range(1..29),
        rng.gen_range(0..1000)
    );
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    body.push(gb11643_check(&digits));
    body
}

/// The GB 11643 check character of the first 17 digits (values 0..=9).
pub fn gb11643_check(digits: &[u8]) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(*digit) * weight)
        .sum();
    CHECK[(sum % 11) as usize]
}

/// A Luhn-valid 16- or 19-digit UnionPay-style bank card number.
pub fn bank_card<R: Rng + ?Sized>(rng: &mut R) -> String {
    let prefix = pick(rng, &["622202", "621700", "622848", "623668"]);
    let len = if rng.gen_bool(0.5) { 16 } else { 19 };
    let mut digits: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while digits.len() < len - 1 {
        digits.push(rng.gen_range(0..10));
    }
    digits.push(luhn_check_digit(&digits));
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

/// The Luhn check digit to append to `digits` (values 0..=9).
pub fn luhn_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, digit)| {
            let digit = u32::from(*digit);
            if position % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// True when the digits (with the check digit last) pass the Luhn test.
pub fn luhn_valid(number: &str) -> bool {
    let digits: Vec<u8> = number.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    match digits.split_last() {
        Some((check, body)) if digits.iter().all(|d| *d < 10) => luhn_check_digit(body) == *check,
        _ => false,
    }
}

/// A plausible e-mail address.
pub fn email<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!(
        "{}{}@{}",
        pick(rng, &["zhang", "li.wei", "chen_x", "wangfang", "tony"]),
        rng.gen_range(1..999),
        pick(rng, &["qq.com", "163.com", "gmail.com", "example.cn"])
    )
}

const FILE_STEMS: &[(&str, &str)] = &[
    ("报价单", "xlsx"),
    ("期末成绩汇总", "xlsx"),
    ("合同 final v2", "docx"),
    ("项目周报", "docx"),
    ("发票", "pdf"),
    ("课程表", "pdf"),
    ("团购清单", "xlsx"),
    ("会议纪要", "txt"),
    ("照片", "zip"),
    ("安装包", "apk"),
    ("视频素材", "mp4"),
    ("扫描件", "jpg"),
    ("报价单,最终版\"v3\"", "xlsx"),
    ("=cmd|' calc'!A0", "csv"),
    ("-rf", "txt"),
    ("名单 (1)", "xlsx"),
];

/// Number of distinct base file names [`file_name`] draws from.
pub const FILE_NAME_COUNT: usize = FILE_STEMS.len();

/// A received file's base name and extension; `index < FILE_NAME_COUNT` picks
/// one, the caller makes names unique the way WeChat does (`name(1).ext`).
pub fn file_name(index: usize) -> (&'static str, &'static str) {
    FILE_STEMS[index % FILE_STEMS.len()]
}

/// Removes characters XML 1.0 cannot carry (NUL and other C0 controls but
/// tab, LF, CR), so a quoted text stays well-formed.
pub fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r') || (*c as u32) >= 0x80)
        .collect()
}

/// XML-escapes `text` for element content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

fn pick<'a, R: Rng + ?Sized>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::seeded_rng;

    #[test]
    fn resident_ids_have_valid_check_digits() {
        // Published example: 11010519491231002X.
        let digits: Vec<u8> = "11010519491231002".bytes().map(|b| b - b'0').collect();
        assert_eq!(gb11643_check(&digits), 'X');
        let mut rng = seeded_rng(3, 0);
        for _ in 0..100 {
            let id = resident_id(&mut rng);
            assert_eq!(id.chars().count(), 18);
            let digits: Vec<u8> = id[..17].bytes().map(|b| b - b'0').collect();
            assert_eq!(id.chars().last(), Some(gb11643_check(&digits)));
        }
    }

    #[test]
    fn bank_cards_pass_luhn() {
        assert!(luhn_valid("4539578763621486"));
        let mut rng = seeded_rng(4, 0);
        for _ in 0..100 {
            assert!(luhn_valid(&bank_card(&mut rng)));
        }
    }

    #[test]
    fn non_keyword_group_names_have_no_keywords() {
        let mut rng = seeded_rng(5, 0);
        for kind in [GroupKind::Family, GroupKind::Work, GroupKind::Other] {
            for _ in 0..50 {
                let name = group_name(&mut rng, kind);
                assert!(
                    GROUP_TYPE_KEYWORDS.iter().all(|k| !name.contains(k)),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn long_text_has_ten_thousand_chars() {
        assert_eq!(long_text(10_000).chars().count(), 10_000);
        assert_eq!(to_full_width("138"), "１３８");
    }
}

//! Just enough XML to read WeChat's message payloads: find an element's text or an
//! attribute, unescape entities and CDATA. Payloads are small, often malformed, and a full
//! parser would reject what we can still read.

/// The text of the first `<tag>…</tag>`, unescaped (CDATA kept verbatim).
pub fn element_text(xml: &str, tag: &str) -> Option<String> {
    element_inner(xml, tag).map(unescape_text)
}

/// What lies between the first `<tag>` and its `</tag>`, raw (not unescaped): to read
/// the elements of one part of a payload, such as a reply's `<refermsg>`.
pub fn element_inner<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = find_open_tag(xml, tag)?;
    let after_open = start + xml[start..].find('>')? + 1;
    if xml[..after_open].ends_with("/>") {
        return Some("");
    }
    let end = after_open + find_close_tag(&xml[after_open..], tag)?;
    Some(&xml[after_open..end])
}

/// The value of `attr` on the first `<tag …>`.
pub fn attribute(xml: &str, tag: &str, attr: &str) -> Option<String> {
    // An empty name is found at every offset and the scan below would never advance
    // (a hang the wechat_xml fuzz target found; fuzz/regressions/wechat_xml/).
    if attr.is_empty() {
        return None;
    }
    let start = find_open_tag(xml, tag)?;
    let end = start + xml[start..].find('>')?;
    let open_tag = &xml[start..end];
    let mut rest = open_tag;
    loop {
        let at = rest.find(attr)?;
        let before_ok = at > 0 && rest.as_bytes()[at - 1].is_ascii_whitespace();
        let after = rest[at + attr.len()..].trim_start();
        if before_ok {
            if let Some(value_part) = after.strip_prefix('=') {
                let value_part = value_part.trim_start();
                let quote = value_part.chars().next()?;
                if quote == '"' || quote == '\'' {
                    let body = &value_part[1..];
                    let close = body.find(quote)?;
                    return Some(unescape(&body[..close]));
                }
                return None;
            }
        }
        rest = &rest[at + attr.len()..];
    }
}

/// True when the payload contains `<tag` as an element.
pub fn has_element(xml: &str, tag: &str) -> bool {
    find_open_tag(xml, tag).is_some()
}

/// Where `<tag` starts as an element.
fn find_open_tag(xml: &str, tag: &str) -> Option<usize> {
    find_markup(xml, |after_lt| {
        let rest = after_lt.strip_prefix(tag.as_bytes())?;
        matches!(
            rest.first(),
            Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r')
        )
        .then_some(())
    })
}

/// Where `</tag>` starts.
fn find_close_tag(xml: &str, tag: &str) -> Option<usize> {
    find_markup(xml, |after_lt| {
        let rest = after_lt.strip_prefix(b"/")?.strip_prefix(tag.as_bytes())?;
        (rest.first() == Some(&b'>')).then_some(())
    })
}

/// The first `<` whose following bytes `matches`. Scanning for `<` and comparing beats
/// building a needle per call for payloads of a few hundred bytes.
fn find_markup(xml: &str, matches: impl Fn(&[u8]) -> Option<()>) -> Option<usize> {
    let bytes = xml.as_bytes();
    let mut from = 0;
    while let Some(found) = bytes[from..].iter().position(|&b| b == b'<') {
        let at = from + found;
        if matches(&bytes[at + 1..]).is_some() {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn unescape_text(raw: &str) -> String {
    let trimmed = raw.trim();
    if let Some(inner) = trimmed
        .strip_prefix("<![CDATA[")
        .and_then(|s| s.strip_suffix("]]>"))
    {
        return inner.to_string();
    }
    unescape(raw)
}

/// Replaces the five named entities and numeric character references.
pub fn unescape(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_attributes_and_entities() {
        let xml = r#"<msg><appmsg appid=""><title><![CDATA[a <b> & c]]></title><type>6</type><des>x &amp; y &#x4E2D;</des></appmsg><img md5="abc" length='12'/></msg>"#;
        assert_eq!(element_text(xml, "title").unwrap(), "a <b> & c");
        assert_eq!(element_text(xml, "type").unwrap(), "6");
        assert_eq!(element_text(xml, "des").unwrap(), "x & y 中");
        assert_eq!(attribute(xml, "img", "length").unwrap(), "12");
        assert_eq!(attribute(xml, "img", "md5").unwrap(), "abc");
        assert!(attribute(xml, "img", "d5").is_none());
        assert!(element_text(xml, "typ").is_none());
        assert!(element_text("<msg><title>unclosed", "title").is_none());
        assert!(element_text("<msg><title>a</titles></title", "title").is_none());
        assert_eq!(element_text("<t>x</t ></t>", "t").unwrap(), "x</t >");
        assert!(!has_element("<imgs><im>", "img"));
        assert!(has_element("<a/><img\n/>", "img"));
        assert_eq!(
            unescape("a & b &bogus; &#99999999;"),
            "a & b &bogus; &#99999999;"
        );
    }
}

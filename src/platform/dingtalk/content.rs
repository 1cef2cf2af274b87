//! The JSON a message row carries: `content` (per `contentType`) and `attachments`, whose
//! first element's `extension` is itself a JSON string (JSON inside JSON).

use serde::Deserialize;
use serde_json::Value;

/// The fields of `content` the content types use; unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Body {
    pub text: Option<String>,
    pub filename: Option<String>,
    pub title: Option<String>,
    pub duration: Option<Value>,
    pub count: Option<Value>,
}

pub fn parse_body(content: &str) -> Result<Body, String> {
    serde_json::from_str::<Body>(content)
        .map_err(|e| format!("content is not the expected JSON ({e})"))
}

/// The file an attachment describes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileInfo {
    pub f_name: Option<String>,
    pub f_size: Option<Value>,
    pub path: Option<String>,
}

/// `attachments[0].extension`, decoded. `Ok(None)` when there is no attachment.
pub fn parse_attachment(attachments: &str) -> Result<Option<FileInfo>, String> {
    if attachments.trim().is_empty() {
        return Ok(None);
    }
    let list: Value =
        serde_json::from_str(attachments).map_err(|e| format!("attachments are not JSON ({e})"))?;
    let first = match &list {
        Value::Array(items) => match items.first() {
            Some(first) => first,
            None => return Ok(None),
        },
        Value::Null => return Ok(None),
        _ => return Err("attachments are not a JSON array".into()),
    };
    let extension = match first {
        Value::Object(fields) => fields.get("extension"),
        _ => return Err("attachments[0] is not an object".into()),
    };
    match extension {
        None | Some(Value::Null) => Ok(None),
        // The documented shape: a string holding JSON.
        Some(Value::String(inner)) => serde_json::from_str::<FileInfo>(inner)
            .map(Some)
            .map_err(|e| format!("attachments[0].extension is not the expected JSON ({e})")),
        // Some writers store the object itself; it means the same.
        Some(object @ Value::Object(_)) => serde_json::from_value::<FileInfo>(object.clone())
            .map(Some)
            .map_err(|e| format!("attachments[0].extension is not the expected JSON ({e})")),
        Some(_) => Err("attachments[0].extension is neither a JSON string nor an object".into()),
    }
}

/// A JSON number, or a string holding one.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_extension_json() {
        let attachments = r#"[{"type":1,"extension":"{\"f_name\":\"报价单.xlsx\",\"f_size\":\"1234\",\"path\":\"resource_cache/ab/报价单.xlsx\"}"}]"#;
        let file = parse_attachment(attachments).unwrap().unwrap();
        assert_eq!(file.f_name.as_deref(), Some("报价单.xlsx"));
        assert_eq!(file.f_size.as_ref().and_then(number), Some(1234.0));
        assert_eq!(file.path.as_deref(), Some("resource_cache/ab/报价单.xlsx"));
        assert!(parse_attachment("[]").unwrap().is_none());
        assert!(parse_attachment("[{\"extension\":\"{broken\"}]").is_err());
        assert!(parse_attachment("{not json").is_err());
        assert!(parse_attachment(r#"[{"extension":{"path":"a/b.amr"}}]"#)
            .unwrap()
            .is_some());
    }

    #[test]
    fn bodies() {
        assert_eq!(
            parse_body(r#"{"text":"a,\"b\"\n"}"#)
                .unwrap()
                .text
                .as_deref(),
            Some("a,\"b\"\n")
        );
        assert!(parse_body("not json").is_err());
        assert!(parse_body("\"a string\"").is_err());
        assert!(parse_body(r#"{"text":5}"#).is_err());
        assert!(parse_body(r#"{"duration":"3000"}"#)
            .unwrap()
            .duration
            .is_some());
    }
}

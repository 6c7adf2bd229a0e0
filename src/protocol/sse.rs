//! Server-sent events framing: `event:` line, one `data:` line per payload line (split on
//! CR, LF and CRLF so a payload can never inject an event), and a blank line.

use base64::Engine as _;

/// Appends one event to `out`.
pub fn write_event(out: &mut Vec<u8>, event: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.push(b'\n');
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                push_data_line(out, &data[start..i]);
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            b'\n' => {
                push_data_line(out, &data[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    push_data_line(out, &data[start..]);
    out.push(b'\n');
}

fn push_data_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(b"data:");
    out.extend_from_slice(line);
    out.push(b'\n');
}

/// Standard base64 (RFC 4648) of a binary payload.
pub fn base64(data: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(data)
        .into_bytes()
}

/// The JSON of a control event.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    pub stream_next_offset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_cursor: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub up_to_date: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream_closed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_on_every_line_break() {
        let mut out = Vec::new();
        write_event(&mut out, "data", b"a\r\nb\rc\nd");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: data\ndata:a\ndata:b\ndata:c\ndata:d\n\n"
        );
    }

    #[test]
    fn injection_attempts_stay_inside_data_lines() {
        let mut out = Vec::new();
        write_event(&mut out, "data", b"x\n\nevent: control\ndata: {}");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.matches("\nevent:").count(), 0);
        assert!(s.starts_with("event: data\n"));
    }

    #[test]
    fn control_serialises_camel_case() {
        let c = Control {
            stream_next_offset: "X".into(),
            stream_cursor: Some("5".into()),
            up_to_date: true,
            stream_closed: false,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"streamNextOffset":"X","streamCursor":"5","upToDate":true}"#
        );
    }
}

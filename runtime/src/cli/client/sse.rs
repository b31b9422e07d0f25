//! A server-sent event parser for `weir runs logs --follow`: bytes in as the network
//! gives them, whole events out.

/// One event: its type (`message` when the server names none) and its data lines
/// joined by `\n`.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Takes the next chunk of the stream and returns the events it completes. A chunk may
    /// end anywhere, even inside a UTF-8 character; the rest waits for the next one.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            if let Some(e) = self.line(&line) {
                events.push(e);
            }
            start = end + 1;
        }
        self.buf.drain(..start);
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            // Dispatch. The spec drops events without data; an `end` event may well carry
            // none, so a named event is dispatched too.
            let event = self.event.take();
            let data = self.data.take();
            if event.is_none() && data.is_none() {
                return None;
            }
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                data: data.unwrap_or_default(),
            });
        }
        if line.starts_with(':') {
            return None; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {} // id, retry and unknown fields do not matter here
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_anywhere_in_the_stream() {
        let stream = "event: log\ndata: {\"seq\":1}\n\n: keep-alive\n\nevent: log\r\ndata:{\"seq\":2}\r\n\r\nevent: end\ndata: {}\n\n";
        let whole = SseParser::default().feed(stream.as_bytes());
        assert_eq!(
            whole,
            vec![
                ev("log", r#"{"seq":1}"#),
                ev("log", r#"{"seq":2}"#),
                ev("end", "{}")
            ]
        );
        for size in 1..8 {
            let mut p = SseParser::default();
            let mut got = Vec::new();
            for chunk in stream.as_bytes().chunks(size) {
                got.extend(p.feed(chunk));
            }
            assert_eq!(got, whole, "chunks of {size} bytes");
        }
    }

    #[test]
    fn multiline_data_default_type_and_dataless_end() {
        let mut p = SseParser::default();
        assert_eq!(
            p.feed(b"data: a\ndata: b\nid: 7\n\nevent: end\n\n"),
            vec![ev("message", "a\nb"), ev("end", "")]
        );
        // Nothing is dispatched before the blank line.
        assert!(p.feed(b"event: log\ndata: x\n").is_empty());
        assert_eq!(p.feed(b"\n"), vec![ev("log", "x")]);
    }

    #[test]
    fn utf8_split_between_chunks() {
        let bytes = "data: héllo\n\n".as_bytes();
        let mut p = SseParser::default();
        assert!(p.feed(&bytes[..8]).is_empty());
        assert_eq!(p.feed(&bytes[8..]), vec![ev("message", "héllo")]);
    }
}

//! A component upload's progress, on a terminal only: the bytes sent, then "compiling"
//! while the server compiles it (which can take seconds for a big component). On
//! anything else (a pipe, a file, a test) nothing is printed, so scripts stay clean.

use super::api::Body;
use std::io::{IsTerminal, Write};

/// Chunks the body is sent in; also how often the count moves.
const CHUNK: usize = 64 << 10;

/// The progress line of one upload on stderr.
pub struct Progress {
    label: String,
}

impl Progress {
    /// A progress line when stderr is a terminal.
    pub fn on_terminal(label: &str) -> Option<Progress> {
        std::io::stderr().is_terminal().then(|| Progress {
            label: super::output::clean_line(label),
        })
    }

    /// The body of the upload, counting its bytes on the progress line as they go.
    pub fn body(&self, bytes: Vec<u8>, content_type: &'static str) -> Body {
        let bytes = bytes::Bytes::from(bytes);
        let total = bytes.len();
        let label = self.label.clone();
        let stream = futures_util::stream::unfold(0usize, move |sent| {
            let (bytes, label) = (bytes.clone(), label.clone());
            async move {
                if sent > total || (sent == total && total > 0) {
                    return None;
                }
                let end = (sent + CHUNK).min(total);
                // The last chunk: the server answers once it has compiled the component
                // (the stream is not polled again once its length is reached).
                if end == total {
                    status(&format!(
                        "{label}: {} sent; the server is compiling it...",
                        size(total)
                    ));
                } else {
                    status(&format!(
                        "{label}: {} of {} sent ({}%)",
                        size(end),
                        size(total),
                        end * 100 / total
                    ));
                }
                Some((Ok::<_, std::io::Error>(bytes.slice(sent..end)), end.max(1)))
            }
        });
        Body::Stream(
            reqwest::Body::wrap_stream(stream),
            total as u64,
            content_type,
        )
    }

    /// Clears the progress line once the server has answered.
    pub fn done(self) {
        status("");
    }
}

/// Rewrites the progress line.
fn status(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[K{line}");
    let _ = err.flush();
}

/// A byte count as people read it: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub fn size(n: usize) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(12 << 20), "12.0 MiB");
    }
}

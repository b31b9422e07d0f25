//! Markdown from guests (artifacts) rendered to HTML and sanitized with an allow-list:
//! no script, no event handlers, no `javascript:` links, no styles; links open without
//! giving the target page a handle on this one.

use maud::PreEscaped;

/// Renders untrusted markdown to HTML that is safe to put in a page.
pub fn render(markdown: &str) -> PreEscaped<String> {
    use pulldown_cmark::{Options, Parser, html};
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(markdown, options));
    PreEscaped(
        ammonia::Builder::default()
            .link_rel(Some("noopener noreferrer nofollow"))
            .url_schemes(["http", "https", "mailto"].into())
            .clean(&raw)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_keeps_its_formatting_and_loses_every_script() {
        let html = render(
            "# Report\n\n**bold** | a\n---|---\n1 | 2\n\n[x](javascript:alert(3)) and [y](https://e.com/y)\n\n\
             <script>alert(1)</script>\n<img src=x onerror=alert(2)>\n\
             <a href=\"https://e.com\" onclick=\"alert(4)\">e</a>\n\
             <iframe src=\"https://e.com\"></iframe><style>body{}</style>",
        )
        .0;
        assert!(html.contains("<h1>Report</h1>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "onclick",
            "<iframe",
            "<style",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
        assert!(
            html.contains("rel=\"noopener noreferrer nofollow\""),
            "{html}"
        );
    }
}

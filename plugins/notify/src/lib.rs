//! Weir's `notify` plugin: `send` posts a message to a Slack, Discord or Microsoft Teams
//! incoming webhook, or to any webhook as JSON with the run it comes from.
//!
//! A webhook URL is a credential: errors and logs name the argument or the secret that
//! holds it, never the URL (the host at most).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weir_sdk::http::RequestOptions;
use weir_sdk::{Error, Result, task};

// The component's exports. Only a wasm build is a component: unit tests build the crate
// for the host, where the exports' names cannot be linked.
#[cfg(target_family = "wasm")]
weir_sdk::export!();

/// Declares task arguments as transparent wrappers: each one's doc comment becomes the
/// description of its parameter in the task's schema (a parameter cannot carry one).
macro_rules! arguments {
    ($($(#[$meta:meta])* $name:ident($(#[$field:meta])* $ty:ty);)*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
        #[serde(transparent)]
        #[schemars(inline)]
        pub struct $name($(#[$field])* pub $ty);

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                $name(value)
            }
        }
    )*};
}

arguments! {
    /// The webhook URL (`https://hooks.slack.com/services/...`, ...). Give it or
    /// `url_secret`, not both.
    Url(String);
    /// The name of a workspace secret that holds the webhook URL, better than `url`
    /// for a URL that is itself a credential. Give it or `url`, not both.
    UrlSecret(String);
    /// The title, shown above the message.
    Title(String);
    /// The message, in Markdown (converted to Slack's own markup for Slack).
    Message(String);
}

/// The kind of webhook, which decides the body: slack (`{"text"}` in Slack's markup),
/// discord (`{"content"}`, at most 2000 characters), teams (a MessageCard) or webhook
/// (`{title, message, flow_run, task_run}`). Default: guessed from the URL's host
/// (hooks.slack.com: slack; discord.com, discordapp.com: discord; *.webhook.office.com,
/// *.logic.azure.com: teams; any other: webhook).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum Kind {
    // No doc comments on the variants: the schema stays a plain `enum` of names.
    Slack,
    Discord,
    Teams,
    Webhook,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Slack => "slack",
            Kind::Discord => "discord",
            Kind::Teams => "teams",
            Kind::Webhook => "webhook",
        }
    }
}

/// What `send` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sent {
    /// The kind of webhook the message was formatted for.
    pub kind: Kind,
    /// The webhook's HTTP status.
    pub status: u16,
}

/// How long each step of the request may take (connecting, the first byte of the answer,
/// each pause in it): webhooks answer at once.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends a message to a Slack, Discord, Microsoft Teams or other webhook.
///
/// Slack, Discord and Teams get their own formats; any other webhook gets JSON
/// (`{title, message, flow_run, task_run}`). Returns `{kind, status}`. A status other than
/// 2xx fails with kind "http-status", retryable for 429 and 5xx only.
#[task]
fn send(
    url: Option<Url>,
    url_secret: Option<UrlSecret>,
    kind: Option<Kind>,
    title: Option<Title>,
    message: Message,
) -> Result<Sent> {
    check_message(title.as_ref().map(|t| t.0.as_str()), &message.0)?;
    let target = match (url, url_secret) {
        (Some(url), None) => Target::url(url.0)?,
        (None, Some(name)) => {
            let value = weir_sdk::variables::secret(&name.0).ok_or_else(|| {
                invalid(
                    "url_secret",
                    format!(
                        "the workspace has no secret {:?} (runs without a workspace, as with \
                         `weir run`, have no secrets)",
                        name.0
                    ),
                )
            })?;
            Target::secret(name.0, value)?
        }
        _ => {
            return Err(invalid(
                "url",
                "give the webhook as url or as url_secret (the name of a secret), exactly one",
            ));
        }
    };
    let kind = kind.unwrap_or_else(|| guess_kind(&target.url));
    let title = title.map(|t| t.0);
    let run = match kind {
        Kind::Webhook => Some(RunInfo::current()),
        _ => None,
    };
    let body = body(kind, title.as_deref(), &message.0, run.as_ref());
    let bytes = body.to_string().into_bytes();
    let response = weir_sdk::http::request_with(
        "POST",
        &target.url,
        &[("content-type", "application/json")],
        Some(&bytes),
        &RequestOptions::new().timeout(TIMEOUT),
    )
    .map_err(|error| {
        // A host the deployment does not allow stays refused: retrying cannot help.
        let error = if error.get_kind() == "http-denied" {
            error.retryable(false)
        } else {
            error
        };
        target.redact(error)
    })?;
    check_status(kind, &target, response.status, &response.text())?;
    Ok(Sent {
        kind,
        status: response.status,
    })
}

/// A message needs text (or at least a title): webhooks refuse empty ones.
pub fn check_message(title: Option<&str>, message: &str) -> Result<()> {
    if message.trim().is_empty() && title.is_none_or(|t| t.trim().is_empty()) {
        return Err(invalid("message", "is empty: there is nothing to send"));
    }
    Ok(())
}

/// An error in the arguments: the same call would fail again.
fn invalid(argument: &str, message: impl std::fmt::Display) -> Error {
    Error::msg(format!("{argument}: {message}"))
        .kind("invalid-argument")
        .retryable(false)
}

/// The webhook URL and how to name it in messages.
#[derive(Debug)]
pub struct Target {
    url: String,
    /// "url" or `url_secret "NAME"`.
    named: String,
}

impl Target {
    /// A URL given as the `url` argument.
    pub fn url(url: String) -> Result<Target> {
        check_url(&url).map_err(|why| invalid("url", format!("the webhook URL {why}")))?;
        Ok(Target {
            url,
            named: "url".to_owned(),
        })
    }

    /// A URL read from a secret: messages name the secret.
    pub fn secret(name: String, value: String) -> Result<Target> {
        let url = value.trim().to_owned();
        check_url(&url).map_err(|why| {
            invalid(
                "url_secret",
                format!("the secret {name:?} does not hold a webhook URL: it {why}"),
            )
        })?;
        Ok(Target {
            url,
            named: format!("url_secret {name:?}"),
        })
    }

    /// The error without the URL, should its message or details quote it.
    fn redact(&self, error: Error) -> Error {
        let details = error.get_details().map(Value::to_string);
        let quoted = |text: &str| text.contains(&self.url);
        if !quoted(error.message()) && !details.as_deref().is_some_and(quoted) {
            return error;
        }
        let hidden = format!("<the URL of {}>", self.named);
        let mut redacted =
            Error::msg(error.message().replace(&self.url, &hidden)).kind(error.get_kind());
        if let Some(retryable) = error.get_retryable() {
            redacted = redacted.retryable(retryable);
        }
        if let Some(details) = details {
            // The URL inside a JSON string: its JSON form, quotes removed.
            let url = Value::String(self.url.clone()).to_string();
            let hidden = Value::String(hidden).to_string();
            let replaced = details.replace(&url[1..url.len() - 1], &hidden[1..hidden.len() - 1]);
            redacted = redacted.details(serde_json::from_str(&replaced).unwrap_or(Value::Null));
        }
        redacted
    }
}

/// Why a URL cannot be a webhook's, in words that do not quote it.
fn check_url(url: &str) -> std::result::Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("does not start with https:// or http://")?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters");
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err("holds credentials before its host (user:password@), which are not sent");
    }
    if host(url).is_empty() {
        return Err("has no host");
    }
    Ok(())
}

/// The URL's host, in lowercase, without port or credentials.
pub fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The kind of webhook a URL is, from its host.
pub fn guess_kind(url: &str) -> Kind {
    let host = host(url);
    let is = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    if host == "hooks.slack.com" {
        Kind::Slack
    } else if is("discord.com") || is("discordapp.com") {
        Kind::Discord
    } else if host.ends_with(".webhook.office.com") || host.ends_with(".logic.azure.com") {
        Kind::Teams
    } else {
        Kind::Webhook
    }
}

/// The run a generic webhook's message comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunInfo {
    pub flow_run_id: String,
    pub flow_run_name: String,
    pub flow_name: String,
    pub task_run_id: Option<String>,
    pub task_run_name: Option<String>,
}

impl RunInfo {
    fn current() -> RunInfo {
        let context = weir_sdk::context();
        RunInfo {
            flow_run_id: context.flow_run_id,
            flow_run_name: context.flow_run_name,
            flow_name: context.flow_name,
            task_run_id: context.task_run_id,
            task_run_name: context.task_run_name,
        }
    }
}

/// The JSON body for a kind of webhook (`run` is needed for the generic webhook only).
pub fn body(kind: Kind, title: Option<&str>, message: &str, run: Option<&RunInfo>) -> Value {
    match kind {
        Kind::Slack => {
            let mut text = String::new();
            if let Some(title) = title {
                text.push('*');
                text.push_str(&slack_escape(title));
                text.push_str("*\n");
            }
            text.push_str(&slack_mrkdwn(message));
            json!({ "text": text })
        }
        Kind::Discord => {
            let text = match title {
                Some(title) => format!("**{title}**\n{message}"),
                None => message.to_owned(),
            };
            // No mentions: a message that quotes `@everyone` from a run must not ping a
            // whole server.
            json!({
                "content": truncate_utf16(&text, DISCORD_LIMIT),
                "allowed_mentions": {"parse": []},
            })
        }
        Kind::Teams => {
            let summary = title
                .or_else(|| message.lines().find(|line| !line.trim().is_empty()))
                .unwrap_or("Notification");
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": truncate_utf16(summary.trim(), 150),
                "text": message,
            });
            if let Some(title) = title {
                card["title"] = json!(title);
            }
            card
        }
        Kind::Webhook => {
            let run = run.cloned().unwrap_or_default();
            json!({
                "title": title,
                "message": message,
                "flow_run": {
                    "id": run.flow_run_id,
                    "name": run.flow_run_name,
                    "flow_name": run.flow_name,
                },
                "task_run": {
                    "id": run.task_run_id,
                    "name": run.task_run_name,
                },
            })
        }
    }
}

/// Discord refuses longer messages.
pub const DISCORD_LIMIT: usize = 2000;

/// At most `limit` UTF-16 units (as Discord and Teams count), ending in "…" when cut.
pub fn truncate_utf16(text: &str, limit: usize) -> String {
    if text.encode_utf16().count() <= limit {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut units = 0;
    for c in text.chars() {
        if units + c.len_utf16() > limit - 1 {
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// Slack's markup escapes these three characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown to Slack's mrkdwn: `**bold**` is `*bold*`, `*italic*` `_italic_`, `~~struck~~`
/// `~struck~`, `[text](url)` `<url|text>`, headings bold lines and `*`/`-` bullets `•`.
/// Code spans and blocks stay as they are; `&`, `<` and `>` are escaped except in
/// Slack's own `<...>` links and mentions (`<https://...>`, `<@U123>`, `<!here>`).
pub fn slack_mrkdwn(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut in_fence = false;
    for (i, line) in markdown.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
            out.push_str(&slack_escape(line));
            continue;
        }
        if in_fence {
            out.push_str(&slack_escape(line));
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            let heading = trimmed[hashes..].trim();
            out.push_str(indent);
            out.push('*');
            // The line is bold already: bold inside it would end it early.
            out.push_str(&slack_inline(&heading.replace("**", "")));
            out.push('*');
            continue;
        }
        if let Some(item) = trimmed
            .strip_prefix("* ")
            .or_else(|| trimmed.strip_prefix("- "))
        {
            out.push_str(indent);
            out.push_str("• ");
            out.push_str(&slack_inline(item));
            continue;
        }
        out.push_str(&slack_inline(line));
    }
    out
}

/// One line of Markdown to mrkdwn (see [`slack_mrkdwn`]).
fn slack_inline(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let find = |from: usize, pattern: &[char]| -> Option<usize> {
        (from..chars.len().saturating_sub(pattern.len() - 1))
            .find(|&j| chars[j..j + pattern.len()] == *pattern)
    };
    let collect = |from: usize, to: usize| -> String { chars[from..to].iter().collect() };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '`' => {
                // A code span: as it is, to its closing backtick.
                let end = find(i + 1, &['`']).map_or(chars.len(), |e| e + 1);
                out.push_str(&slack_escape(&collect(i, end)));
                i = end;
                continue;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                if let Some(end) = find(i + 2, &['*', '*']).filter(|&e| e > i + 2) {
                    out.push('*');
                    out.push_str(&slack_inline(&collect(i + 2, end)));
                    out.push('*');
                    i = end + 2;
                    continue;
                }
            }
            '*' if chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) => {
                if let Some(end) = find(i + 1, &['*']).filter(|&e| !chars[e - 1].is_whitespace()) {
                    out.push('_');
                    out.push_str(&slack_inline(&collect(i + 1, end)));
                    out.push('_');
                    i = end + 1;
                    continue;
                }
            }
            '~' if chars.get(i + 1) == Some(&'~') => {
                if let Some(end) = find(i + 2, &['~', '~']).filter(|&e| e > i + 2) {
                    out.push('~');
                    out.push_str(&slack_inline(&collect(i + 2, end)));
                    out.push('~');
                    i = end + 2;
                    continue;
                }
            }
            '[' | '!' => {
                let open = if c == '!' { i + 1 } else { i };
                if chars.get(open) == Some(&'[')
                    && let Some(close) = find(open + 1, &[']'])
                    && chars.get(close + 1) == Some(&'(')
                    && let Some(end) = find(close + 2, &[')'])
                {
                    let label = collect(open + 1, close);
                    let target = collect(close + 2, end);
                    // `[text](url "title")`: the title is dropped.
                    let url = target.split_whitespace().next().unwrap_or_default();
                    let url = url.replace('|', "%7C").replace('>', "%3E");
                    out.push('<');
                    out.push_str(&url);
                    if !label.is_empty() {
                        out.push('|');
                        out.push_str(&slack_escape(&label));
                    }
                    out.push('>');
                    i = end + 1;
                    continue;
                }
            }
            '<' => {
                // Slack's own links and mentions pass as they are.
                if let Some(end) = find(i + 1, &['>']) {
                    let inside = collect(i + 1, end);
                    let slack_syntax = ["http://", "https://", "mailto:", "@", "#", "!"]
                        .iter()
                        .any(|p| inside.starts_with(p))
                        && !inside.contains(char::is_whitespace)
                        && !inside.contains('<');
                    if slack_syntax {
                        out.push('<');
                        out.push_str(&inside);
                        out.push('>');
                        i = end + 1;
                        continue;
                    }
                }
            }
            _ => {}
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Fails unless the webhook answered 2xx; retryable for 429 and 5xx.
pub fn check_status(kind: Kind, target: &Target, status: u16, body: &str) -> Result<()> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = match body.char_indices().nth(500) {
        Some((i, _)) => format!("{}...", &body[..i]),
        None => body.to_owned(),
    };
    let retryable = status == 429 || (500..600).contains(&status);
    let error = Error::msg(format!(
        "the {} webhook ({}, host {}) answered {status}: {body}",
        kind.name(),
        target.named,
        host(&target.url)
    ))
    .kind("http-status")
    .retryable(retryable)
    .details(json!({ "status": status, "body": body }));
    Err(target.redact(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLACK: &str = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";

    #[test]
    fn the_kind_is_guessed_from_the_host() {
        for (url, kind) in [
            (SLACK, Kind::Slack),
            ("https://HOOKS.slack.com./services/x", Kind::Slack),
            ("https://discord.com/api/webhooks/1/abc", Kind::Discord),
            ("https://ptb.discord.com/api/webhooks/1/abc", Kind::Discord),
            ("https://discordapp.com/api/webhooks/1/abc", Kind::Discord),
            (
                "https://contoso.webhook.office.com/webhookb2/x",
                Kind::Teams,
            ),
            (
                "https://prod-12.westus.logic.azure.com:443/workflows/x?sig=y",
                Kind::Teams,
            ),
            ("https://example.com/hooks/slack", Kind::Webhook),
            ("https://notdiscord.com/x", Kind::Webhook),
            ("https://hooks.slack.com.evil.example/x", Kind::Webhook),
            ("https://user@[::1]:8080/x", Kind::Webhook),
        ] {
            assert_eq!(guess_kind(url), kind, "{url}");
        }
        assert_eq!(host("https://u:p@Example.COM:8443/x"), "example.com");
        assert_eq!(host("http://[::1]:80/"), "::1");
    }

    #[test]
    fn slack_gets_mrkdwn_with_the_title_in_bold() {
        let body = body(
            Kind::Slack,
            Some("Run <failed>"),
            "**etl** failed: see [the run](https://weir.example/runs/1?a=1&b=2) & retry",
            None,
        );
        assert_eq!(
            body,
            json!({"text": "*Run &lt;failed&gt;*\n*etl* failed: see <https://weir.example/runs/1?a=1&b=2|the run> &amp; retry"})
        );
        assert_eq!(
            super::body(Kind::Slack, None, "plain", None),
            json!({"text": "plain"})
        );
    }

    #[test]
    fn markdown_becomes_slack_markup() {
        let cases = [
            (
                "**bold** and *italic* and ~~gone~~",
                "*bold* and _italic_ and ~gone~",
            ),
            ("# Report\n## Sub **x** y", "*Report*\n*Sub x y*"),
            ("* one\n- two\n  - nested", "• one\n• two\n  • nested"),
            ("a * b * c", "a * b * c"),
            ("2 ** 3", "2 ** 3"),
            ("`**not bold** <x>` after", "`**not bold** &lt;x&gt;` after"),
            (
                "```\n**code** <b>\n```\n**bold**",
                "```\n**code** &lt;b&gt;\n```\n*bold*",
            ),
            (
                "![chart](https://x/c.png \"Chart\")",
                "<https://x/c.png|chart>",
            ),
            ("[a|b](https://x/?q=a|b>c)", "<https://x/?q=a%7Cb%3Ec|a|b>"),
            (
                "ping <!here> and <@U123>, see <https://x|x>",
                "ping <!here> and <@U123>, see <https://x|x>",
            ),
            (
                "1 < 2 > 0 <not a link>",
                "1 &lt; 2 &gt; 0 &lt;not a link&gt;",
            ),
            ("[broken](no close", "[broken](no close"),
            ("unclosed **bold", "unclosed **bold"),
            ("", ""),
            ("é **ü** ✓", "é *ü* ✓"),
        ];
        for (markdown, expected) in cases {
            assert_eq!(slack_mrkdwn(markdown), expected, "{markdown:?}");
        }
    }

    #[test]
    fn discord_gets_markdown_and_at_most_2000_characters() {
        assert_eq!(
            body(Kind::Discord, Some("Done"), "**etl** ok", None),
            json!({"content": "**Done**\n**etl** ok", "allowed_mentions": {"parse": []}})
        );
        let long = "x".repeat(2500);
        let content = body(Kind::Discord, None, &long, None)["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(content.chars().count(), 2000);
        assert!(content.ends_with("x…"));
        // Characters beyond the BMP count twice, as Discord counts.
        let emoji = "😀".repeat(1500);
        let content = truncate_utf16(&emoji, DISCORD_LIMIT);
        assert_eq!(content.encode_utf16().count(), 1999);
        assert!(content.ends_with('…'));
        assert_eq!(truncate_utf16(&"x".repeat(2000), DISCORD_LIMIT).len(), 2000);
    }

    #[test]
    fn teams_gets_a_message_card() {
        assert_eq!(
            body(Kind::Teams, Some("Nightly"), "**3** rows\n- a", None),
            json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": "Nightly",
                "title": "Nightly",
                "text": "**3** rows\n- a",
            })
        );
        let card = body(Kind::Teams, None, "\n  first line\nsecond", None);
        assert_eq!(card["summary"], "first line");
        assert!(card.get("title").is_none());
    }

    #[test]
    fn a_generic_webhook_gets_the_run() {
        let run = RunInfo {
            flow_run_id: "fr-1".into(),
            flow_run_name: "calm-otter".into(),
            flow_name: "etl".into(),
            task_run_id: Some("tr-1".into()),
            task_run_name: Some("send-0".into()),
        };
        assert_eq!(
            body(Kind::Webhook, None, "done", Some(&run)),
            json!({
                "title": null,
                "message": "done",
                "flow_run": {"id": "fr-1", "name": "calm-otter", "flow_name": "etl"},
                "task_run": {"id": "tr-1", "name": "send-0"},
            })
        );
    }

    #[test]
    fn kinds_are_lowercase_in_json() {
        assert_eq!(
            serde_json::to_value(Sent {
                kind: Kind::Teams,
                status: 200
            })
            .unwrap(),
            json!({"kind": "teams", "status": 200})
        );
        assert_eq!(
            serde_json::from_value::<Kind>(json!("discord")).unwrap(),
            Kind::Discord
        );
    }

    #[test]
    fn secret_urls_stay_out_of_errors() {
        let target = Target::secret("SLACK_URL".into(), format!("{SLACK}\n")).unwrap();
        assert_eq!(target.url, SLACK);
        let error = check_status(Kind::Slack, &target, 404, "no_service").unwrap_err();
        assert_eq!(
            error.message(),
            "the slack webhook (url_secret \"SLACK_URL\", host hooks.slack.com) answered 404: no_service"
        );
        assert_eq!(error.get_retryable(), Some(false));
        // A body that echoes the URL is redacted too.
        let error = check_status(Kind::Slack, &target, 503, &format!("down: {SLACK}")).unwrap_err();
        assert!(!error.message().contains("XXXXSECRET"), "{error:?}");
        assert!(
            error
                .message()
                .contains("<the URL of url_secret \"SLACK_URL\">"),
            "{error:?}"
        );
        assert!(
            !error
                .get_details()
                .unwrap()
                .to_string()
                .contains("XXXXSECRET"),
            "{error:?}"
        );
        assert_eq!(error.get_details().unwrap()["status"], 503);
        assert_eq!(error.get_retryable(), Some(true));
        assert_eq!(error.get_kind(), "http-status");
        let error = target.redact(Error::msg(format!("{SLACK:?}: invalid path")).kind("x"));
        assert!(!error.message().contains("XXXXSECRET"), "{error:?}");
        assert_eq!(error.get_kind(), "x");
        for bad in [
            "not a url",
            "ftp://x/y",
            "https://user:pw@hooks.slack.com/x",
            "https:///x",
        ] {
            let error = Target::secret("S".into(), bad.into()).unwrap_err();
            assert!(
                error.message().starts_with("url_secret: the secret \"S\""),
                "{error:?}"
            );
            assert!(!error.message().contains(bad), "{error:?}");
            assert_eq!(error.get_retryable(), Some(false));
        }
        let error = Target::url("ftp://x/y".into()).unwrap_err();
        assert!(
            error
                .message()
                .starts_with("url: the webhook URL does not start"),
            "{error:?}"
        );
    }

    #[test]
    fn an_empty_message_is_refused() {
        let error = check_message(None, " \n").unwrap_err();
        assert_eq!(
            error.message(),
            "message: is empty: there is nothing to send"
        );
        assert_eq!(error.get_retryable(), Some(false));
        assert!(check_message(Some(" "), "").is_err());
        assert!(check_message(Some("Deployed"), "").is_ok());
        assert!(check_message(None, "hi").is_ok());
    }

    #[test]
    fn status_classification() {
        let target = Target::url("https://example.com/hook".into()).unwrap();
        assert!(check_status(Kind::Webhook, &target, 200, "").is_ok());
        assert!(check_status(Kind::Discord, &target, 204, "").is_ok());
        for (status, retryable) in [
            (400, false),
            (403, false),
            (410, false),
            (429, true),
            (502, true),
        ] {
            let error = check_status(Kind::Webhook, &target, status, "x").unwrap_err();
            assert_eq!(error.get_retryable(), Some(retryable), "{status}");
            assert_eq!(
                error.get_details(),
                Some(&json!({"status": status, "body": "x"}))
            );
        }
    }

    /// The task's parameters schema, as the component's manifest gives it to the host.
    fn schema(task: &str) -> Value {
        weir_sdk::__private::inventory::iter::<weir_sdk::__private::Registration>
            .into_iter()
            .find(|r| r.name == task)
            .map(|r| (r.parameters_schema)())
            .expect("the task is registered")
    }

    /// Checks the parameters in order, the required ones, and that each is described.
    fn check_parameters(task: &str, names: &[&str], required: &[&str]) -> Value {
        let schema = schema(task);
        let properties = schema["properties"].as_object().unwrap();
        assert_eq!(properties.keys().collect::<Vec<_>>(), names, "{task}");
        assert_eq!(schema["required"], json!(required), "{task}");
        for (name, property) in properties {
            assert!(
                property["description"].is_string(),
                "{task}: {name} has no description"
            );
        }
        schema
    }

    #[test]
    fn the_schema_describes_each_argument() {
        let schema = check_parameters(
            "send",
            &["url", "url_secret", "kind", "title", "message"],
            &["message"],
        );
        assert_eq!(
            schema["properties"]["kind"]["enum"],
            json!(["slack", "discord", "teams", "webhook", null])
        );
    }
}

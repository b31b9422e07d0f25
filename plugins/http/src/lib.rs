//! Weir's `http` plugin: `request` makes one HTTP request and returns the status, the
//! headers and the body (parsed when it is JSON). A status other than the expected ones
//! fails the task: retryably for 429 and 5xx, for good otherwise.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weir_sdk::http::{RequestOptions, Response};
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
    /// The URL: `http://` or `https://`, a host the deployment allows
    /// (`capabilities.allowed_hosts`), then an optional port, path and query.
    Url(String);
    /// The HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD...
    Method(String);
    /// Request headers, name to value.
    Headers(BTreeMap<String, String>);
    /// Query parameters, name to value (string, number or boolean), URL-encoded and
    /// appended to the URL (in the order the task receives them).
    Query(#[schemars(with = "BTreeMap<String, QueryValue>")] Map<String, Value>);
    /// A JSON body; sets `content-type: application/json` unless `headers` set one. Not
    /// with `body`.
    Json(Value);
    /// A text body, sent as is (set its `content-type` in `headers`). Not with `json`.
    Body(String);
    /// How long each step may take, in seconds: connecting, the first byte of the
    /// response, and each pause between bytes of its body.
    TimeoutSeconds(f64);
    /// The statuses that succeed; any other fails the task. Default: any 2xx.
    ExpectedStatus(#[schemars(inner(range(min = 100, max = 599)))] Vec<u16>);
}

/// A query parameter's value in the schema: a string, a number or a boolean.
pub struct QueryValue;

impl JsonSchema for QueryValue {
    fn schema_name() -> Cow<'static, str> {
        "QueryValue".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// What `request` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The response headers, names in lowercase; repeated ones joined with ", ".
    pub headers: Map<String, Value>,
    /// The body parsed, when it is JSON; else null.
    pub json: Value,
    /// The body as text, when it is not JSON; else null.
    pub text: Option<String>,
}

/// Makes an HTTP request and returns its status, headers and body.
///
/// Returns `{status, headers, json, text}`: `json` is the parsed body when it is JSON
/// (else null), `text` the body otherwise (else null). A status outside `expected_status`
/// (default: any 2xx) fails with kind "http-status", retryable for 429 and 5xx only.
#[task]
#[allow(clippy::too_many_arguments)]
fn request(
    url: Url,
    #[default(String::from("GET"))] method: Method,
    headers: Option<Headers>,
    query: Option<Query>,
    json: Option<Json>,
    body: Option<Body>,
    timeout_seconds: Option<TimeoutSeconds>,
    expected_status: Option<ExpectedStatus>,
) -> Result<HttpResponse> {
    let prepared = prepare(Arguments {
        url: url.0,
        method: method.0,
        headers: headers.map(|h| h.0).unwrap_or_default(),
        query: query.map(|q| q.0),
        json: json.map(|j| j.0),
        body: body.map(|b| b.0),
        timeout_seconds: timeout_seconds.map(|t| t.0),
        expected_status: expected_status.map(|e| e.0),
    })?;
    let headers: Vec<(&str, &str)> = prepared
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let response = weir_sdk::http::request_with(
        &prepared.method,
        &prepared.url,
        &headers,
        prepared.body.as_deref(),
        &prepared.options,
    )
    .map_err(denied_for_good)?;
    check_status(&prepared, &response)?;
    Ok(response_value(response))
}

/// A host that the deployment does not allow stays refused: retrying cannot help.
fn denied_for_good(error: Error) -> Error {
    if error.get_kind() == "http-denied" {
        error.retryable(false)
    } else {
        error
    }
}

/// The task's arguments, defaults applied.
#[derive(Debug, Default)]
pub struct Arguments {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub query: Option<Map<String, Value>>,
    pub json: Option<Value>,
    pub body: Option<String>,
    pub timeout_seconds: Option<f64>,
    pub expected_status: Option<Vec<u16>>,
}

/// A request ready to send.
#[derive(Debug, PartialEq)]
pub struct Prepared {
    pub method: String,
    /// The URL with the query appended.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub options: RequestOptions,
    /// `None`: any 2xx.
    pub expected: Option<Vec<u16>>,
}

/// An error in the arguments: the same call would fail again.
fn invalid(argument: &str, message: impl std::fmt::Display) -> Error {
    Error::msg(format!("{argument}: {message}"))
        .kind("invalid-argument")
        .retryable(false)
}

/// Checks the arguments and builds the request.
pub fn prepare(arguments: Arguments) -> Result<Prepared> {
    let Arguments {
        url,
        method,
        headers,
        query,
        json,
        body,
        timeout_seconds,
        expected_status,
    } = arguments;
    let mut url = check_url(&url)?;
    if let Some(query) = &query {
        url = append_query(&url, query)?;
    }
    let method = check_method(&method)?;
    let mut headers: Vec<(String, String)> = headers.into_iter().collect();
    for (name, value) in &headers {
        check_header(name, value)?;
    }
    let has_content_type = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    let body = match (json, body) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "json",
                "json and body are both set; send one body (json for JSON, body for text)",
            ));
        }
        (Some(json), None) => {
            if !has_content_type {
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
            }
            Some(json.to_string().into_bytes())
        }
        (None, Some(text)) => Some(text.into_bytes()),
        (None, None) => None,
    };
    let options = match timeout_seconds {
        None => RequestOptions::new(),
        Some(seconds) => {
            let timeout = Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|d| !d.is_zero() && seconds.is_finite())
                .ok_or_else(|| {
                    invalid(
                        "timeout_seconds",
                        format!("{seconds} is not a positive number of seconds"),
                    )
                })?;
            RequestOptions::new().timeout(timeout)
        }
    };
    let expected = match expected_status {
        None => None,
        Some(codes) if codes.is_empty() => {
            return Err(invalid(
                "expected_status",
                "the list is empty; leave it out to accept any 2xx status",
            ));
        }
        Some(codes) => {
            if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
                return Err(invalid(
                    "expected_status",
                    format!("{bad} is not an HTTP status (100 to 599)"),
                ));
            }
            Some(codes)
        }
    };
    Ok(Prepared {
        method,
        url,
        headers,
        body,
        options,
        expected,
    })
}

/// The URL, checked: http or https, a host, no credentials, no spaces; a path of "/" when
/// it has none.
pub fn check_url(url: &str) -> Result<String> {
    let bad = |why: &str| invalid("url", format!("{url:?} {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("is not an http:// or https:// URL"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad("is not an http:// or https:// URL"));
    }
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(&format!(
            "contains {c:?}; encode it (a space is %20), or pass values in query"
        )));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(invalid(
            "url",
            "credentials in the URL (user:password@host) are not sent; pass them in an \
             authorization header",
        ));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(bad("has no host"));
    }
    // The fragment is never sent to the server.
    let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
    let slash = if tail.starts_with('/') { "" } else { "/" };
    Ok(format!("{scheme}://{authority}{slash}{tail}"))
}

/// `url` with `query` appended, each name and value percent-encoded.
pub fn append_query(url: &str, query: &Map<String, Value>) -> Result<String> {
    let mut pairs = Vec::with_capacity(query.len());
    for (name, value) in query {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(invalid(
                    "query",
                    format!("the value of {name:?} is not a string, number or boolean"),
                ));
            }
        };
        pairs.push(format!("{}={}", encode(name), encode(&text)));
    }
    if pairs.is_empty() {
        return Ok(url.to_owned());
    }
    let separator = match url.find('?') {
        None => "?",
        Some(_) if url.ends_with('?') || url.ends_with('&') => "",
        Some(_) => "&",
    };
    Ok(format!("{url}{separator}{}", pairs.join("&")))
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The method in capitals; a method is a token (RFC 9110).
pub fn check_method(method: &str) -> Result<String> {
    let token = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(invalid(
            "method",
            format!("{method:?} is not an HTTP method"),
        ));
    }
    Ok(method.to_ascii_uppercase())
}

fn check_header(name: &str, value: &str) -> Result<()> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(invalid("headers", format!("{name:?} is not a header name")));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(invalid(
            "headers",
            format!("the value of {name:?} contains a line break"),
        ));
    }
    Ok(())
}

/// Fails unless the status is expected; retryable for 429 and 5xx.
pub fn check_status(prepared: &Prepared, response: &Response) -> Result<()> {
    let status = response.status;
    let ok = match &prepared.expected {
        None => (200..300).contains(&status),
        Some(codes) => codes.contains(&status),
    };
    if ok {
        return Ok(());
    }
    let expected = match &prepared.expected {
        None => "2xx".to_owned(),
        Some(codes) => codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let body = first_chars(&response.text(), 500);
    // Not the query: it may hold keys.
    let target = prepared
        .url
        .split_once('?')
        .map_or(prepared.url.as_str(), |(before, _)| before);
    let retryable = status == 429 || (500..600).contains(&status);
    Err(Error::msg(format!(
        "{} {target} answered {status} (expected {expected}): {body}",
        prepared.method
    ))
    .kind("http-status")
    .retryable(retryable)
    .details(serde_json::json!({ "status": status, "body": body })))
}

fn first_chars(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// The response as the task returns it.
pub fn response_value(response: Response) -> HttpResponse {
    let mut headers = Map::new();
    for (name, value) in &response.headers {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    let parsed = if response.body.is_empty() {
        None
    } else {
        serde_json::from_slice::<Value>(&response.body).ok()
    };
    let (json, text) = match parsed {
        Some(json) => (json, None),
        None => (Value::Null, Some(response.text())),
    };
    HttpResponse {
        status: response.status,
        headers,
        json,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(url: &str) -> Arguments {
        Arguments {
            url: url.to_owned(),
            method: "GET".to_owned(),
            ..Arguments::default()
        }
    }

    fn query(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn query_values_are_encoded_and_appended_in_order() {
        let q = query(json!({"q": "a b&c=d/é", "n": 10, "x": 1.5, "ok": true, "e": ""}));
        assert_eq!(
            append_query("https://api.example.com/search", &q).unwrap(),
            "https://api.example.com/search?q=a%20b%26c%3Dd%2F%C3%A9&n=10&x=1.5&ok=true&e="
        );
        assert_eq!(
            append_query("https://h/p?a=1", &query(json!({"b": 2}))).unwrap(),
            "https://h/p?a=1&b=2"
        );
        assert_eq!(
            append_query("https://h/p?", &query(json!({"b": 2}))).unwrap(),
            "https://h/p?b=2"
        );
        assert_eq!(
            append_query("https://h/p", &Map::new()).unwrap(),
            "https://h/p"
        );
        let error = append_query("https://h/", &query(json!({"bad": [1]}))).unwrap_err();
        assert_eq!(
            error.message(),
            "query: the value of \"bad\" is not a string, number or boolean"
        );
        assert_eq!(error.get_retryable(), Some(false));
    }

    #[test]
    fn urls_are_checked_and_normalized() {
        assert_eq!(
            check_url("https://example.com").unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            check_url("HTTP://example.com:8080?a=1").unwrap(),
            "http://example.com:8080/?a=1"
        );
        assert_eq!(
            check_url("https://h/p?q=1#frag").unwrap(),
            "https://h/p?q=1"
        );
        for (url, why) in [
            ("ftp://h/", "not an http:// or https:// URL"),
            ("example.com/x", "not an http:// or https:// URL"),
            ("https:///path", "has no host"),
            ("https://h/a b", "contains ' '"),
            ("https://user:secret@h/", "credentials in the URL"),
        ] {
            let error = check_url(url).unwrap_err();
            assert!(error.message().starts_with("url: "), "{error:?}");
            assert!(error.message().contains(why), "{url}: {error:?}");
        }
        assert!(
            !check_url("https://user:secret@h/")
                .unwrap_err()
                .message()
                .contains("secret")
        );
    }

    #[test]
    fn a_json_body_sets_its_content_type_unless_given() {
        let prepared = prepare(Arguments {
            method: "post".to_owned(),
            json: Some(json!({"a": [1, "x"]})),
            query: Some(query(json!({"page": 2}))),
            ..args("https://api.example.com/items")
        })
        .unwrap();
        assert_eq!(prepared.method, "POST");
        assert_eq!(prepared.url, "https://api.example.com/items?page=2");
        assert_eq!(
            prepared.body.as_deref(),
            Some(br#"{"a":[1,"x"]}"#.as_slice())
        );
        assert_eq!(
            prepared.headers,
            [("content-type".to_owned(), "application/json".to_owned())]
        );
        let mut headers = BTreeMap::new();
        headers.insert(
            "Content-Type".to_owned(),
            "application/vnd.api+json".to_owned(),
        );
        let prepared = prepare(Arguments {
            json: Some(json!(1)),
            headers,
            ..args("https://h/")
        })
        .unwrap();
        assert_eq!(prepared.headers.len(), 1);
        assert_eq!(prepared.headers[0].1, "application/vnd.api+json");
        let prepared = prepare(Arguments {
            body: Some("plain".to_owned()),
            ..args("https://h/")
        })
        .unwrap();
        assert_eq!(prepared.body.as_deref(), Some(b"plain".as_slice()));
        assert!(prepared.headers.is_empty());
    }

    #[test]
    fn arguments_at_fault_are_named() {
        let cases = [
            (
                Arguments {
                    json: Some(json!({})),
                    body: Some("x".to_owned()),
                    ..args("https://h/")
                },
                "json: json and body are both set",
            ),
            (
                Arguments {
                    method: "GE T".to_owned(),
                    ..args("https://h/")
                },
                "method: ",
            ),
            (
                Arguments {
                    timeout_seconds: Some(0.0),
                    ..args("https://h/")
                },
                "timeout_seconds: 0 is not a positive",
            ),
            (
                Arguments {
                    timeout_seconds: Some(-1.0),
                    ..args("https://h/")
                },
                "timeout_seconds: ",
            ),
            (
                Arguments {
                    expected_status: Some(vec![]),
                    ..args("https://h/")
                },
                "expected_status: the list is empty",
            ),
            (
                Arguments {
                    expected_status: Some(vec![200, 42]),
                    ..args("https://h/")
                },
                "expected_status: 42 is not an HTTP status",
            ),
            (
                Arguments {
                    headers: [("bad name".to_owned(), "v".to_owned())].into(),
                    ..args("https://h/")
                },
                "headers: \"bad name\" is not a header name",
            ),
            (
                Arguments {
                    headers: [("x-a".to_owned(), "v\r\nx-b: 1".to_owned())].into(),
                    ..args("https://h/")
                },
                "headers: the value of \"x-a\" contains a line break",
            ),
        ];
        for (arguments, expected) in cases {
            let error = prepare(arguments).unwrap_err();
            assert!(error.message().starts_with(expected), "{error:?}");
            assert_eq!(error.get_kind(), "invalid-argument");
            assert_eq!(error.get_retryable(), Some(false));
        }
    }

    #[test]
    fn the_timeout_applies_to_each_step() {
        let prepared = prepare(Arguments {
            timeout_seconds: Some(2.5),
            ..args("https://h/")
        })
        .unwrap();
        let d = Some(Duration::from_millis(2500));
        assert_eq!(prepared.options.connect_timeout, d);
        assert_eq!(prepared.options.first_byte_timeout, d);
        assert_eq!(prepared.options.between_bytes_timeout, d);
        assert_eq!(
            prepare(args("https://h/")).unwrap().options,
            RequestOptions::new()
        );
    }

    #[test]
    fn statuses_are_classified() {
        let prepared = prepare(args("https://api.example.com/v1?key=secret")).unwrap();
        assert!(check_status(&prepared, &response(200, &[], "")).is_ok());
        assert!(check_status(&prepared, &response(204, &[], "")).is_ok());
        for (status, retryable) in [
            (404, false),
            (400, false),
            (301, false),
            (429, true),
            (500, true),
            (503, true),
        ] {
            let error = check_status(&prepared, &response(status, &[], "nope")).unwrap_err();
            assert_eq!(error.get_kind(), "http-status");
            assert_eq!(error.get_retryable(), Some(retryable), "{status}");
            assert_eq!(
                error.message(),
                format!("GET https://api.example.com/v1 answered {status} (expected 2xx): nope")
            );
            assert_eq!(
                error.get_details(),
                Some(&json!({"status": status, "body": "nope"}))
            );
        }
        let expecting = prepare(Arguments {
            expected_status: Some(vec![200, 404]),
            ..args("https://h/")
        })
        .unwrap();
        assert!(check_status(&expecting, &response(404, &[], "")).is_ok());
        let error = check_status(&expecting, &response(201, &[], "")).unwrap_err();
        assert!(error.message().contains("(expected 200, 404)"), "{error:?}");
        assert_eq!(error.get_retryable(), Some(false));
    }

    #[test]
    fn status_errors_keep_the_first_500_characters_of_the_body() {
        let prepared = prepare(args("https://h/")).unwrap();
        let body = "é".repeat(600);
        let error = check_status(&prepared, &response(500, &[], &body)).unwrap_err();
        let shown = error.get_details().unwrap()["body"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(shown, format!("{}...", "é".repeat(500)));
    }

    #[test]
    fn json_bodies_are_parsed_and_others_kept_as_text() {
        let value = response_value(response(
            200,
            &[
                ("Content-Type", "application/json"),
                ("Set-Cookie", "a=1"),
                ("set-cookie", "b=2"),
            ],
            r#"{"ok": true}"#,
        ));
        assert_eq!(
            value,
            HttpResponse {
                status: 200,
                headers: query(
                    json!({"content-type": "application/json", "set-cookie": "a=1, b=2"})
                ),
                json: json!({"ok": true}),
                text: None,
            }
        );
        // JSON without a JSON content type is still JSON.
        assert_eq!(
            response_value(response(200, &[], "[1, 2]")).json,
            json!([1, 2])
        );
        let html = response_value(response(200, &[("content-type", "text/html")], "<p>hi</p>"));
        assert_eq!(
            (html.json, html.text.as_deref()),
            (Value::Null, Some("<p>hi</p>"))
        );
        let broken = response_value(response(200, &[("content-type", "application/json")], "{"));
        assert_eq!(
            (broken.json, broken.text.as_deref()),
            (Value::Null, Some("{"))
        );
        let empty = response_value(response(204, &[], ""));
        assert_eq!((empty.json, empty.text.as_deref()), (Value::Null, Some("")));
        assert_eq!(
            serde_json::to_value(response_value(response(200, &[], "7"))).unwrap(),
            json!({"status": 200, "headers": {}, "json": 7, "text": null})
        );
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
            "request",
            &[
                "url",
                "method",
                "headers",
                "query",
                "json",
                "body",
                "timeout_seconds",
                "expected_status",
            ],
            &["url"],
        );
        let p = &schema["properties"];
        assert_eq!(p["method"]["default"], "GET");
        assert_eq!(
            p["query"]["additionalProperties"]["type"],
            json!(["string", "number", "boolean"])
        );
        assert_eq!(p["expected_status"]["items"]["minimum"], 100);
        assert!(p["json"].get("type").is_none(), "any JSON");
    }
}

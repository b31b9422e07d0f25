//! The UI's static files, embedded in the binary: htmx and its SSE extension (vendored
//! from their npm packages, htmx.org 2.0.11 and htmx-ext-sse 2.2.4, both under the
//! Zero-Clause BSD licence), Weir's stylesheet and its one small script.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "htmx.min.js",
        "text/javascript",
        include_bytes!("assets/htmx.min.js"),
    ),
    (
        "sse.min.js",
        "text/javascript",
        include_bytes!("assets/sse.min.js"),
    ),
    (
        "weir.js",
        "text/javascript",
        include_bytes!("assets/weir.js"),
    ),
    ("weir.css", "text/css", include_bytes!("assets/weir.css")),
];

pub async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, mime, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut res = (*bytes).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // Names change with the binary's version, not with the file: a short cache.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

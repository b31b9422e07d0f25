//! Paging, the same on every list: one query (`limit`, `cursor`), checked by one function,
//! and keyset cursors the server signs. A cursor names where its list stopped (an id, a
//! name, a time and an id...) and which list it belongs to; its MAC, under a key derived
//! from the server's master key, makes a cursor this server did not issue, or one issued
//! by another list (another route, another run's logs, another workspace), a 400 instead
//! of a page of something else.

use super::{ApiError, ApiResult, AppState};
use crate::secrets::SecretBox;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};

/// Items per page when the request names no `limit`.
pub const DEFAULT_LIMIT: i64 = 50;
/// The most items a page holds.
pub const MAX_LIMIT: i64 = 500;
/// Bytes of the MAC a cursor carries.
const TAG_LEN: usize = 16;

/// A page of a list: `next_cursor` is `null` on the last page.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass it as `cursor` for the next page; `null` when this page is the last.
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor`, taken by every list.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page.
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the page before. A cursor this list did not issue is a 400.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// No filter: a list that takes only `limit` and `cursor` (any other query parameter is
/// refused).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFilter {}

/// The query of a list: its own filters `F` (unknown parameters refused) and the page.
pub struct Paged<F = NoFilter> {
    pub filter: F,
    pub page: PageQuery,
}

impl Paged {
    /// The first page at its largest, for a caller within the server that shows one
    /// page (the UI's settings).
    pub fn largest() -> Self {
        Paged {
            filter: NoFilter {},
            page: PageQuery {
                limit: Some(MAX_LIMIT),
                cursor: None,
            },
        }
    }
}

impl<F: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Paged<F> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let bad = |e: serde_urlencoded::de::Error| {
            ApiError::BadRequest(format!("failed to deserialize query string: {e}"))
        };
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).map_err(bad)?;
        let mut page = PageQuery::default();
        let mut rest = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match k.as_str() {
                "limit" if page.limit.is_none() => {
                    page.limit = Some(v.trim().parse().map_err(|_| limit_error())?);
                }
                "cursor" if page.cursor.is_none() => page.cursor = Some(v),
                "limit" | "cursor" => {
                    return Err(ApiError::BadRequest(format!("'{k}' is given twice")));
                }
                _ => rest.push((k, v)),
            }
        }
        let rest = serde_urlencoded::to_string(&rest).map_err(ApiError::internal)?;
        let filter = serde_urlencoded::from_str(&rest).map_err(bad)?;
        Ok(Paged { filter, page })
    }
}

fn limit_error() -> ApiError {
    ApiError::BadRequest(format!("'limit' must be an integer from 1 to {MAX_LIMIT}"))
}

fn cursor_error() -> ApiError {
    ApiError::BadRequest(
        "'cursor' is not a cursor of this list: pass the next_cursor of its page before".into(),
    )
}

impl PageQuery {
    /// Checks the page's `limit` and `cursor` for the list `list` of `scope` (what the
    /// list is of: a workspace, a run, a deployment...). Every list goes through here.
    pub fn check(&self, state: &AppState, list: &'static str, scope: &str) -> ApiResult<Pager> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(limit_error());
        }
        let pager = Pager {
            limit,
            after: None,
            list,
            scope: scope.to_owned(),
            secrets: state.secrets.clone(),
        };
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(pager.open(c).ok_or_else(cursor_error)?),
        };
        Ok(Pager { after, ..pager })
    }
}

/// A checked page request: how many items, and after which (from the cursor).
pub struct Pager {
    pub limit: i64,
    after: Option<Value>,
    list: &'static str,
    scope: String,
    secrets: SecretBox,
}

impl Pager {
    /// Rows to ask the store for: one more than the page, to know whether another
    /// page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Where the page before stopped, as the list put it in its cursor.
    pub fn after<T: DeserializeOwned>(&self) -> ApiResult<Option<T>> {
        self.after
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|_| cursor_error())
    }

    /// The page of `rows` (fetched with [`Pager::fetch`]): at most `limit` items, and a
    /// cursor after the last when there are more.
    pub fn page<R, T>(
        &self,
        mut rows: Vec<R>,
        position: impl Fn(&R) -> Value,
        item: impl FnMut(R) -> T,
    ) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| self.seal(&position(r)))
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(item).collect(),
            next_cursor,
        }
    }

    fn tag(&self, payload: &[u8]) -> [u8; 32] {
        self.secrets.mac(&[
            b"cursor",
            self.list.as_bytes(),
            self.scope.as_bytes(),
            payload,
        ])
    }

    fn seal(&self, position: &Value) -> String {
        let payload = position.to_string();
        let tag = self.tag(payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
        )
    }

    fn open(&self, cursor: &str) -> Option<Value> {
        let (payload, tag) = cursor.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let expected = self.tag(&payload);
        if tag.len() != TAG_LEN || !bool::from(tag.ct_eq(&expected[..TAG_LEN])) {
            return None;
        }
        serde_json::from_slice(&payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pager(list: &'static str, scope: &str, key: u8) -> Pager {
        Pager {
            limit: 2,
            after: None,
            list,
            scope: scope.into(),
            secrets: SecretBox::from_key(&[key; 32]),
        }
    }

    #[test]
    fn a_cursor_opens_only_on_the_list_that_issued_it() {
        let runs = pager("flow-runs", "ws1", 1);
        let page = runs.page(vec![1, 2, 3], |n| serde_json::json!(n), |n| n);
        assert_eq!(page.items, [1, 2]);
        let cursor = page.next_cursor.unwrap();
        assert_eq!(runs.open(&cursor), Some(serde_json::json!(2)));
        // Another list, another scope, another server key: not theirs.
        assert_eq!(pager("task-runs", "ws1", 1).open(&cursor), None);
        assert_eq!(pager("flow-runs", "ws2", 1).open(&cursor), None);
        assert_eq!(pager("flow-runs", "ws1", 2).open(&cursor), None);
        // Tampered with, truncated, or made up.
        let (payload, tag) = cursor.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("3"));
        assert_eq!(runs.open(&forged), None);
        assert_eq!(runs.open(payload), None);
        assert_eq!(runs.open(&cursor[..cursor.len() - 1]), None);
        assert_eq!(runs.open("not a cursor"), None);
        assert_eq!(runs.open(""), None);
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let p = pager("x", "y", 1);
        let page = p.page(vec![1, 2], |n| serde_json::json!(n), |n| n);
        assert_eq!((page.items.len(), page.next_cursor), (2, None));
        let page = p.page(Vec::<i32>::new(), |n| serde_json::json!(n), |n| n);
        assert!(page.items.is_empty() && page.next_cursor.is_none());
    }
}

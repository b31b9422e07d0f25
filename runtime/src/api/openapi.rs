//! The OpenAPI document at `/api/openapi.json`: what the handlers' annotations say, plus
//! what every route shares and an attribute cannot say once for all of them.
//!
//! [`Shared`] adds to each operation the errors that come from layers every route passes
//! through, so that no handler has to repeat them and none can forget them:
//! - `400` where a path, query or body is read (a path that does not decode, a bad
//!   `limit` or `cursor`, malformed JSON);
//! - `401` where a key is needed; `503` where the database is (every route but
//!   `/health`), with `Retry-After`;
//! - `413` and `422` where a body is read, `415` where one is required;
//! - `429` everywhere, with `Retry-After`;
//!
//! and makes every error `application/problem+json` with the [`Problem`] schema. It also
//! writes out the constraints defined once in code rather than in an attribute: the name
//! pattern ([`NAME_PATTERN`], what `valid_name` takes) on every name in a body or a path,
//! the state filters' pattern (from [`StateType::ALL`]), and the server's memory limit.

use super::Problem;
use super::auth::BearerScheme;
use crate::model::state::StateType;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, Object, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{
    Content, Header, OpenApi as Doc, Ref, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Weir",
        description = "Workflows as WebAssembly components: upload, deploy, trigger, watch."
    ),
    components(schemas(Problem)),
    modifiers(&BearerScheme)
)]
pub(super) struct ApiDoc;

const PROBLEM_JSON: &str = "application/problem+json";

/// Every name of the API (workspaces, deployments, pools, variables, secrets, API keys,
/// tag limits): 1 to 100 letters, digits, '.', '-' or '_', but neither '.' nor '..'.
/// `workspaces::valid_name` checks the same.
pub(crate) const NAME_PATTERN: &str = r"^([A-Za-z0-9_-][A-Za-z0-9._-]{0,99}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,98}|\.\.[A-Za-z0-9._-]{1,98})$";

/// A component's digest: sha256 in lowercase hex.
const DIGEST_PATTERN: &str = "^[0-9a-f]{64}$";

/// A host a deployment may reach: no '/', no space.
const HOST_PATTERN: &str = "^[^/ ]+$";

/// Body fields with a pattern: schema, property (for an array, its items), pattern.
const BODY_PATTERNS: &[(&str, &str, &str)] = &[
    ("CreateWorkspace", "name", NAME_PATTERN),
    ("CreateKey", "name", NAME_PATTERN),
    ("CreateDeployment", "name", NAME_PATTERN),
    ("CreateDeployment", "pool", NAME_PATTERN),
    ("UpdateDeployment", "name", NAME_PATTERN),
    ("UpdateDeployment", "pool", NAME_PATTERN),
    ("CreateDeployment", "work_queue", NAME_PATTERN),
    ("UpdateDeployment", "work_queue", NAME_PATTERN),
    ("CreatePool", "name", NAME_PATTERN),
    ("Capabilities", "allowed_hosts", HOST_PATTERN),
    ("Capabilities", "plugin_secrets", NAME_PATTERN),
    ("RegisterPlugin", "name", NAME_PATTERN),
];

/// The pattern of a path parameter, by its route.
fn path_pattern(path: &str, param: &str) -> Option<&'static str> {
    match param {
        // A deployment by id or name: ids are names too.
        "id" if path.starts_with("/api/deployments/") => Some(NAME_PATTERN),
        "name" | "tag" | "pool" => Some(NAME_PATTERN),
        "digest" => Some(DIGEST_PATTERN),
        _ => None,
    }
}

/// What every route shares and code defines; see the module's documentation.
pub(super) struct Shared {
    /// The most memory a deployment may ask for, in MiB (the server's limit).
    pub memory_mb_max: i64,
}

impl Modify for Shared {
    fn modify(&self, doc: &mut Doc) {
        if let Some(components) = doc.components.as_mut() {
            for (schema, property, pattern) in BODY_PATTERNS {
                if let Some(s) = property_schema(&mut components.schemas, schema, property) {
                    s.pattern = Some((*pattern).to_owned());
                }
            }
            if let Some(s) = property_schema(&mut components.schemas, "ResourceLimits", "memory_mb")
            {
                s.maximum = Some(self.memory_mb_max.into());
            }
        }
        // A component upload is raw bytes.
        if let Some(RefOr::T(body)) = doc
            .paths
            .paths
            .get_mut("/api/components")
            .and_then(|p| p.post.as_mut())
            .and_then(|op| op.request_body.as_mut())
            && let Some(RefOr::T(content)) = body.content.get_mut("application/wasm")
        {
            content.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("binary".into())))
                    .into(),
            );
        }
        let states = state_list_pattern();
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                // Handlers of different resources share names (`create`, `list`): the
                // tag makes each operation id unique, as OpenAPI requires.
                if let (Some(tag), Some(id)) =
                    (op.tags.as_ref().and_then(|t| t.first()), &op.operation_id)
                {
                    op.operation_id = Some(format!("{tag}_{id}"));
                }
                shared_errors(path, op);
                for p in op.parameters.iter_mut().flatten() {
                    let RefOr::T(p) = p else { continue };
                    let pattern = match p.parameter_in {
                        ParameterIn::Query if p.name == "state" => Some(states.as_str()),
                        ParameterIn::Path => path_pattern(path, &p.name),
                        _ => None,
                    };
                    if let Some(pattern) = pattern {
                        p.schema = Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .pattern(Some(pattern))
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

/// The schema of `property` of the component schema `schema` (of its items, for an
/// array), to add a constraint to.
fn property_schema<'a>(
    schemas: &'a mut std::collections::BTreeMap<String, RefOr<Schema>>,
    schema: &str,
    property: &str,
) -> Option<&'a mut Object> {
    let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(schema) else {
        return None;
    };
    match object.properties.get_mut(property)? {
        RefOr::T(Schema::Object(o)) => Some(o),
        RefOr::T(Schema::Array(a)) => match &mut a.items {
            ArrayItems::RefOrSchema(items) => match items.as_mut() {
                RefOr::T(Schema::Object(o)) => Some(o),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn shared_errors(path: &str, op: &mut Operation) {
    let responses = &mut op.responses.responses;
    for (status, response) in responses.iter_mut() {
        let RefOr::T(r) = response else { continue };
        // OpenAPI requires every response to be described.
        if r.description.is_empty() {
            r.description = status
                .parse::<u16>()
                .ok()
                .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("The answer")
                .to_owned();
        }
        // Errors the handlers declare are problem details too.
        let is_problem = matches!(
            r.content.get("application/json"),
            Some(RefOr::T(Content { schema: Some(RefOr::Ref(r)), .. }))
                if r.ref_location.ends_with("/Problem")
        );
        if is_problem && let Some(content) = r.content.shift_remove("application/json") {
            r.content.insert(PROBLEM_JSON.into(), content);
        }
    }
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let body = match &op.request_body {
        Some(RefOr::T(b)) => Some(b.required == Some(Required::True)),
        _ => None,
    };
    let mut add = |status: &str, description: &str, retry_after: bool| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem(description, retry_after)));
    };
    if has_params || body.is_some() {
        add(
            "400",
            "The request cannot be read: a path, query or body that does not parse",
            false,
        );
    }
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        add("401", "No key, or a key that is invalid or revoked", false);
    }
    if let Some(required) = body {
        add("413", "The body is over the server's limit", false);
        if required {
            add("415", "The body is not of the type the route takes", false);
        }
        add(
            "422",
            "The body does not fit the route's schema, or is invalid",
            false,
        );
    }
    add(
        "429",
        "Too many requests from this client: send again after Retry-After seconds",
        true,
    );
    if path != "/health" {
        add(
            "503",
            "The database is away or behind: nothing was done; send the same request again after Retry-After seconds",
            true,
        );
    }
}

fn problem(description: &str, retry_after: bool) -> Response {
    let mut r = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        Content::new(Some(RefOr::<Schema>::Ref(Ref::from_schema_name("Problem")))),
    );
    if retry_after {
        let mut header = Header::new(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        );
        header.description = Some("Seconds to wait before sending again".into());
        r = r.header("Retry-After", header);
    }
    r.build()
}

/// A pattern for what [`super::parse_states`] takes: state types, comma-separated, in
/// any case (or nothing: no filter).
pub(crate) fn state_list_pattern() -> String {
    let one = StateType::ALL
        .iter()
        .map(|s| {
            s.as_str()
                .chars()
                .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("|");
    format!("^(({one})(,({one}))*)?$")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(pattern: &str, text: &str) -> bool {
        jsonschema::is_valid(&json!({"type": "string", "pattern": pattern}), &json!(text))
    }

    #[test]
    fn the_name_pattern_takes_what_valid_name_takes() {
        let long = "x".repeat(100);
        let too_long = "x".repeat(101);
        let dots = format!("..{}", "y".repeat(98));
        for name in [
            "a", "A-b_c.d", "0", "-", "_", "...", ".a", "..a", "a..", "a.", &long, &too_long,
            &dots, ".", "..", "", "a b", "a/b", "é", "a\n", "ab\u{0}",
        ] {
            assert_eq!(
                matches(NAME_PATTERN, name),
                super::super::workspaces::valid_name(name),
                "{name:?}"
            );
        }
    }

    #[test]
    fn the_state_pattern_takes_what_parse_states_takes() {
        let pattern = state_list_pattern();
        for list in [
            "",
            "COMPLETED",
            "completed",
            "Failed,CRASHED",
            "scheduled,pending,running,paused",
            "cancelling,cancelled",
            ",",
            "COMPLETED,",
            ",FAILED",
            "DONE",
            "completed, failed",
            " completed",
            "COMPLETEDX",
        ] {
            assert_eq!(
                matches(&pattern, list),
                super::super::parse_states(list).is_ok(),
                "{list:?}"
            );
        }
    }
}

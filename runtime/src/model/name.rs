//! Names of workspaces, deployments, pools, variables, secrets and limits: what every
//! name of the API and of a guest's limit request must be.

/// Whether `name` is a name: every name of the API is checked here (the OpenAPI
/// document says the same with `openapi::NAME_PATTERN`). '.' and '..' are refused: as a
/// path segment they would name another route.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// What [`valid_name`] takes, for messages.
pub const NAME_RULE: &str = "1 to 100 letters, digits, '.', '-' or '_', but not '.' or '..'";

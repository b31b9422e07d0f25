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

/// Prefect's rule for artifact keys: lowercase letters, digits and dashes.
pub fn valid_artifact_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// What [`valid_name`] takes, for messages.
pub const NAME_RULE: &str = "1 to 100 letters, digits, '.', '-' or '_', but not '.' or '..'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_keys_follow_prefects_rule() {
        assert!(valid_artifact_key("etl-report-2"));
        assert!(!valid_artifact_key("ETL"));
        assert!(!valid_artifact_key("a_b"));
        assert!(!valid_artifact_key(""));
    }
}

//! Task cache keys and the canonical JSON they hash.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// JSON text with object keys sorted at every level, so equal values hash equally.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Hash of a task's canonical inputs.
pub fn input_hash(canonical_args: &str) -> String {
    sha256_hex(&[canonical_args])
}

/// Key of the `inputs` policy: the workspace (caches are never shared between
/// tenants), the component digest (standing in for the task's code), the task name and
/// its canonical inputs.
pub fn inputs_key(workspace: &str, digest: &str, task: &str, canonical_args: &str) -> String {
    sha256_hex(&["inputs", workspace, digest, task, canonical_args])
}

/// Key of a custom key function: the workspace and the task name only, so it survives
/// new versions of the component, as such keys are meant to.
pub fn custom_key(workspace: &str, task: &str, key: &str) -> String {
    sha256_hex(&["custom", workspace, task, key])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn keys_depend_on_every_part() {
        let k = inputs_key("w", "d1", "t", "{}");
        assert_ne!(k, inputs_key("v", "d1", "t", "{}"));
        assert_ne!(k, inputs_key("w", "d2", "t", "{}"));
        assert_ne!(k, inputs_key("w", "d1", "u", "{}"));
        assert_ne!(k, inputs_key("w", "d1", "t", "[]"));
        assert_ne!(custom_key("w", "t", "ab"), custom_key("w", "ta", "b"));
        assert_ne!(custom_key("w", "t", "a"), custom_key("v", "t", "a"));
    }
}

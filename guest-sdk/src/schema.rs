//! The JSON Schema of a flow's or task's parameters, from the schemars schema of each type.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// Builds `{"type": "object", "properties": .., "required": .., "additionalProperties": false}`
/// one parameter at a time; shared definitions end up in the top-level `$defs`, where the
/// parameters' `$ref`s point.
#[doc(hidden)]
pub struct ParametersSchema {
    generator: SchemaGenerator,
    properties: Map<String, Value>,
    required: Vec<Value>,
}

impl ParametersSchema {
    pub fn new() -> Self {
        ParametersSchema {
            generator: SchemaSettings::draft2020_12().into_generator(),
            properties: Map::new(),
            required: Vec::new(),
        }
    }

    /// Adds a parameter; one with a default is never required.
    pub fn param<T: JsonSchema>(&mut self, name: &str, required: bool, default: Option<Value>) {
        let mut schema = self.generator.subschema_for::<T>().to_value();
        if let Some(default) = default {
            match &mut schema {
                Value::Object(object) => {
                    object.insert("default".to_owned(), default);
                }
                // `true` (anything) as a schema: keep its meaning, add the default.
                _ => schema = json!({ "default": default }),
            }
        }
        if required {
            self.required.push(Value::String(name.to_owned()));
        }
        self.properties.insert(name.to_owned(), schema);
    }

    pub fn finish(mut self) -> Value {
        let mut schema = Map::new();
        schema.insert("type".to_owned(), json!("object"));
        schema.insert("properties".to_owned(), Value::Object(self.properties));
        schema.insert("required".to_owned(), Value::Array(self.required));
        schema.insert("additionalProperties".to_owned(), json!(false));
        let definitions = self.generator.take_definitions(true);
        if !definitions.is_empty() {
            schema.insert("$defs".to_owned(), Value::Object(definitions));
        }
        Value::Object(schema)
    }
}

impl Default for ParametersSchema {
    fn default() -> Self {
        ParametersSchema::new()
    }
}

/// A parameter's default as JSON (`#[default(expr)]`); one that cannot be serialized is `null`.
#[doc(hidden)]
pub fn default_value<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Row {
        id: u32,
        tags: Vec<Tag>,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Tag {
        name: String,
    }

    #[test]
    fn scalar_parameters() {
        let mut schema = ParametersSchema::new();
        schema.param::<i64>("x", true, None);
        schema.param::<String>("name", false, Some(default_value("world")));
        schema.param::<Option<bool>>("flag", false, None);
        let schema = schema.finish();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["x"]));
        assert_eq!(schema["properties"]["x"]["type"], "integer");
        assert_eq!(
            schema["properties"]["name"],
            json!({"type": "string", "default": "world"})
        );
        assert!(schema.get("$defs").is_none());
        let order: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(order.len(), 3);
    }

    #[test]
    fn struct_definitions_go_to_the_top_level_defs() {
        let mut schema = ParametersSchema::new();
        schema.param::<Row>("row", true, None);
        schema.param::<Vec<Row>>("rows", true, None);
        let schema = schema.finish();
        assert_eq!(schema["properties"]["row"]["$ref"], "#/$defs/Row");
        assert_eq!(schema["properties"]["rows"]["items"]["$ref"], "#/$defs/Row");
        let defs = schema["$defs"].as_object().unwrap();
        assert!(
            defs.contains_key("Row") && defs.contains_key("Tag"),
            "{defs:?}"
        );
        assert_eq!(
            defs["Row"]["properties"]["tags"]["items"]["$ref"],
            "#/$defs/Tag"
        );
    }

    #[test]
    fn no_parameters() {
        assert_eq!(
            ParametersSchema::new().finish(),
            json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false})
        );
    }
}

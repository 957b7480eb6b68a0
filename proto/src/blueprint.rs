//! Blueprints (`pkg/core/blueprint.go`): desired state of some kind of thing (declared by a
//! `BlueprintDefinition`), reconciled by an executor the definition names. Note the camelCase
//! keys inside definitions and metadata, unlike the rest of ColonyOS.

use crate::gotime::GoTime;
use crate::lenient::null_default as nd;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Metadata of blueprints and definitions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlueprintMetadata {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "String::is_empty"
    )]
    pub locationname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nd", skip_serializing_if = "is_zero")]
    pub generation: i64,
    #[serde(default, rename = "createdAt")]
    pub created_at: GoTime,
    #[serde(default, rename = "updatedAt")]
    pub updated_at: GoTime,
    #[serde(
        default,
        deserialize_with = "nd",
        rename = "lastReconciliationProcess",
        skip_serializing_if = "String::is_empty"
    )]
    pub last_reconciliation_process: String,
    #[serde(default, rename = "lastReconciliationTime")]
    pub last_reconciliation_time: GoTime,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// The names of a kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Names {
    #[serde(default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default, deserialize_with = "nd", rename = "listKind")]
    pub list_kind: String,
    #[serde(default, deserialize_with = "nd")]
    pub singular: String,
    #[serde(default, deserialize_with = "nd")]
    pub plural: String,
    #[serde(
        default,
        rename = "shortNames",
        skip_serializing_if = "Option::is_none"
    )]
    pub short_names: Option<Vec<String>>,
}

/// Which executor reconciles blueprints of a kind, with which function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Handler {
    #[serde(default, deserialize_with = "nd", rename = "executorType")]
    pub executor_type: String,
    #[serde(default, deserialize_with = "nd", rename = "functionName")]
    pub function_name: String,
    /// Seconds between periodic reconciliations (0: the default period).
    #[serde(
        default,
        deserialize_with = "nd",
        rename = "reconcileInterval",
        skip_serializing_if = "is_zero"
    )]
    pub reconcile_interval: i64,
}

/// What a definition declares.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DefinitionSpec {
    #[serde(default, deserialize_with = "nd")]
    pub group: String,
    #[serde(default, deserialize_with = "nd")]
    pub version: String,
    #[serde(default, deserialize_with = "nd")]
    pub names: Names,
    #[serde(default, deserialize_with = "nd")]
    pub scope: String,
    /// A JSON-schema subset the blueprints' `spec` must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, deserialize_with = "nd")]
    pub handler: Handler,
}

/// Declares a kind of blueprint and its reconciler.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlueprintDefinition {
    #[serde(default, deserialize_with = "nd")]
    pub blueprintdefinitionid: String,
    #[serde(default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default, deserialize_with = "nd")]
    pub metadata: BlueprintMetadata,
    #[serde(default, deserialize_with = "nd")]
    pub spec: DefinitionSpec,
}

/// Desired state (`spec`) and observed state (`status`) of one thing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Blueprint {
    #[serde(default, deserialize_with = "nd")]
    pub blueprintid: String,
    #[serde(default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default, deserialize_with = "nd")]
    pub metadata: BlueprintMetadata,
    #[serde(default, deserialize_with = "nd")]
    pub spec: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Map<String, Value>>,
}

/// One recorded change of a blueprint's spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlueprintHistory {
    pub historyid: String,
    pub blueprintid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub spec: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Map<String, Value>>,
    pub timestamp: GoTime,
    pub changedby: String,
    pub changetype: String,
}

/// Checks `value` against a JSON-schema subset: `type` (string, number, integer, boolean,
/// object, array), `required`, `enum`, nested `properties` and array `items`. Unknown keys
/// are allowed. The error names the path that is wrong.
pub fn check_schema(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let fits = match kind {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            _ => true,
        };
        if !fits {
            return Err(format!("{path} must be of type {kind}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.is_empty() && !allowed.contains(value) {
            return Err(format!(
                "{path} must be one of {}",
                Value::from(allowed.clone())
            ));
        }
    }
    if let Some(fields) = value.as_object() {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                return Err(format!("{path}.{name} is required"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, field) in fields {
                if let Some(property) = properties.get(name) {
                    check_schema(property, field, &format!("{path}.{name}"))?;
                }
            }
        }
    }
    if let (Some(items), Some(elements)) = (schema.get("items"), value.as_array()) {
        for (i, element) in elements.iter().enumerate() {
            check_schema(items, element, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_checks_types_required_enums_and_nesting() {
        let schema = json!({
            "type": "object",
            "required": ["replicas"],
            "properties": {
                "replicas": {"type": "integer"},
                "mode": {"type": "string", "enum": ["fast", "safe"]},
                "ports": {"type": "array", "items": {"type": "number"}},
            }
        });
        let ok = json!({"replicas": 3, "mode": "safe", "ports": [80, 443], "extra": true});
        assert_eq!(check_schema(&schema, &ok, "spec"), Ok(()));
        for (bad, reason) in [
            (json!({}), "spec.replicas is required"),
            (
                json!({"replicas": "3"}),
                "spec.replicas must be of type integer",
            ),
            (
                json!({"replicas": 1, "mode": "slow"}),
                "spec.mode must be one of",
            ),
            (
                json!({"replicas": 1, "ports": [80, "x"]}),
                "spec.ports[1] must be",
            ),
        ] {
            let error = check_schema(&schema, &bad, "spec").unwrap_err();
            assert!(error.starts_with(reason), "{error}");
        }
    }

    #[test]
    fn camel_case_keys_on_the_wire() {
        let text = r#"{"kind":"Db","metadata":{"name":"x","colonyname":"dev"},
            "spec":{"names":{"kind":"Db","listKind":"DbList"},
                    "handler":{"executorType":"db-op","functionName":"reconcile"}}}"#;
        let definition: BlueprintDefinition = serde_json::from_str(text).unwrap();
        assert_eq!(definition.spec.handler.executor_type, "db-op");
        assert_eq!(definition.spec.names.list_kind, "DbList");
        let json = serde_json::to_string(&definition).unwrap();
        assert!(json.contains(r#""functionName":"reconcile""#), "{json}");
        assert!(
            json.contains(r#""createdAt":"0001-01-01T00:00:00Z""#),
            "{json}"
        );
    }
}

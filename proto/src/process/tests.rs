//! Wire-shape tests: lenient decoding and the encoding pycolonies' pydantic models require.

use super::*;

#[test]
fn minimal_spec_decodes_with_defaults() {
    let json = r#"{"conditions":{"executortype":"cli"},"funcname":"sleep","args":["10"],
        "maxwaittime":20,"maxretries":1,"maxexectime":30,"unknownfield":{"x":1}}"#;
    let spec: FunctionSpec = serde_json::from_str(json).unwrap();
    assert_eq!(spec.funcname, "sleep");
    assert_eq!(spec.conditions.executortype, "cli");
    assert_eq!(spec.maxexectime, 30);
    assert!(spec.env.is_empty());
    assert!(spec.kwargs.is_none());
}

#[test]
fn null_arrays_and_strings_are_accepted() {
    let json = r#"{"processid":null,"parents":null,"children":null,"in":null,"out":null,
        "errors":null,"attributes":null,"spec":{"args":null,"env":null,"conditions":null}}"#;
    let process: Process = serde_json::from_str(json).unwrap();
    assert!(process.parents.is_empty());
    assert!(process.spec.args.is_empty());
    assert_eq!(process.processid, "");
}

#[test]
fn encoding_uses_lists_and_go_zero_times() {
    let process = Process::default();
    let value = serde_json::to_value(&process).unwrap();
    for key in ["parents", "children", "errors", "in", "out", "attributes"] {
        assert_eq!(value[key], serde_json::json!([]), "{key}");
    }
    assert_eq!(value["starttime"], "0001-01-01T00:00:00Z");
    assert_eq!(value["state"], 0);
    assert_eq!(value["spec"]["args"], serde_json::json!([]));
    assert_eq!(value["spec"]["env"], serde_json::json!({}));
    assert_eq!(
        value["spec"]["conditions"]["dependencies"],
        serde_json::json!([])
    );
    assert!(
        value["spec"].get("channels").is_none(),
        "channels is omitempty"
    );
    assert!(value["spec"]["conditions"].get("locationname").is_none());
}

#[test]
fn field_order_is_gos() {
    let text = serde_json::to_string(&Process::default()).unwrap();
    let order = [
        "processid",
        "initiatorid",
        "assignedexecutorid",
        "state",
        "prioritytime",
        "submissiontime",
        "retries",
        "attributes",
        "spec",
        "waitforparents",
        "processgraphid",
        "\"in\"",
        "\"out\"",
        "errors",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn attribute_id_is_derived_from_target_key_and_type() {
    let id = Attribute::derive_id("p1", "k", attribute_type::OUT);
    assert_eq!(id, crate::crypto::sha3_hex(b"p1k1"));
}

/// Regression (fuzz target `decode`): a number in `args` too large for an integer becomes the
/// float nearest to it, and encoding and decoding it again yields that same float.
#[test]
fn large_numbers_in_args_round_trip() {
    let json = r#"{"funcname":"echo","args":["hi",31111100000000920276050]}"#;
    let spec: FunctionSpec = serde_json::from_str(json).unwrap();
    assert_eq!(
        spec.args[1].as_f64(),
        Some(31_111_100_000_000_920_276_050.0)
    );
    let encoded = serde_json::to_string(&spec).unwrap();
    let again: FunctionSpec = serde_json::from_str(&encoded).unwrap();
    assert_eq!(again, spec);
}

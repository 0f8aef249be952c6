//! Plain JSON views of documents: for the REST API, exports and content hashes.
//!
//! Text objects become strings; the canonical form (sorted keys, no whitespace) is what a
//! submission's content hash is computed over, so that anyone can recompute it from the
//! document at the submission's heads.

use automerge::hydrate::Value as Hydrated;
use automerge::{Automerge, ChangeHash, ScalarValue};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

pub fn to_json(value: &Hydrated) -> Value {
    match value {
        Hydrated::Scalar(s) => scalar(s),
        Hydrated::Text(t) => Value::String(String::from(t)),
        Hydrated::List(list) => Value::Array(list.iter().map(|v| to_json(&v.value)).collect()),
        Hydrated::Map(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_json(&v.value)))
                .collect::<Map<_, _>>(),
        ),
    }
}

fn scalar(s: &ScalarValue) -> Value {
    match s {
        ScalarValue::Str(s) => Value::String(s.to_string()),
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Value::Number((*i).into()),
        ScalarValue::Uint(u) => Value::Number((*u).into()),
        ScalarValue::F64(f) => Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ScalarValue::Counter(c) => Value::Number(i64::from(c).into()),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        ScalarValue::Null | ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } => Value::Null,
    }
}

/// The document as JSON, now or at the given heads.
pub fn document_json(doc: &Automerge, heads: Option<&[ChangeHash]>) -> Value {
    to_json(&doc.hydrate(heads))
}

/// Hex SHA-256 of the canonical JSON (serde_json's maps keep keys sorted).
pub fn content_hash(value: &Value) -> String {
    let bytes = serde_json::to_vec(value).expect("JSON values serialize");
    hex::encode(Sha256::digest(bytes))
}

//! A sample value that keeps NaN and infinities representable in JSON.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A float sample value. JSON has no NaN or infinity, so those serialise as the
/// strings `"NaN"`, `"+Inf"` and `"-Inf"`, as the API contract says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleValue(pub f64);

impl Serialize for SampleValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            serializer.serialize_str("NaN")
        } else if v == f64::INFINITY {
            serializer.serialize_str("+Inf")
        } else if v == f64::NEG_INFINITY {
            serializer.serialize_str("-Inf")
        } else {
            serializer.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for SampleValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = SampleValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or one of \"NaN\", \"+Inf\", \"-Inf\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SampleValue, E> {
                Ok(SampleValue(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SampleValue, E> {
                Ok(SampleValue(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SampleValue, E> {
                Ok(SampleValue(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SampleValue, E> {
                match v {
                    "NaN" => Ok(SampleValue(f64::NAN)),
                    "+Inf" => Ok(SampleValue(f64::INFINITY)),
                    "-Inf" => Ok(SampleValue(f64::NEG_INFINITY)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// OpenAPI shape of [`SampleValue`]: a number, or one of the three strings.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema, Serialize)]
#[serde(untagged)]
#[schema(as = SampleValue, example = json!(1.5))]
pub enum SampleValueSchema {
    Number(f64),
    /// `"NaN"`, `"+Inf"` or `"-Inf"`.
    Special(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_serialise_as_the_contract_strings() {
        let json = serde_json::to_string(&[
            SampleValue(f64::NAN),
            SampleValue(f64::INFINITY),
            SampleValue(f64::NEG_INFINITY),
            SampleValue(1.5),
        ])
        .unwrap();
        assert_eq!(json, r#"["NaN","+Inf","-Inf",1.5]"#);
    }

    #[test]
    fn contract_strings_deserialise_back() {
        let v: Vec<SampleValue> = serde_json::from_str(r#"["NaN","+Inf","-Inf",2]"#).unwrap();
        assert!(v[0].0.is_nan());
        assert_eq!(v[1].0, f64::INFINITY);
        assert_eq!(v[2].0, f64::NEG_INFINITY);
        assert_eq!(v[3].0, 2.0);
    }
}

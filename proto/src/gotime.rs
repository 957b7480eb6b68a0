//! `GoTime`: a timestamp that serializes exactly like Go's `time.Time` in JSON.
//!
//! Internally a Unix time in nanoseconds; Go's zero time (`0001-01-01T00:00:00Z`) is a separate
//! value because it does not fit in `i64` nanoseconds. Output is RFC 3339 with trailing zeros of
//! the fraction trimmed (Go's `RFC3339Nano`), always in UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Go's JSON text for the zero `time.Time`.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A point in time as Unix nanoseconds, or Go's zero time (`unix_nanos == None`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoTime {
    unix_nanos: Option<i64>,
}

impl GoTime {
    /// Go's zero time: "not set".
    pub const ZERO: GoTime = GoTime { unix_nanos: None };

    pub fn from_unix_nanos(unix_nanos: i64) -> GoTime {
        GoTime {
            unix_nanos: Some(unix_nanos),
        }
    }

    /// Unix nanoseconds, or `None` for the zero time.
    pub fn unix_nanos(self) -> Option<i64> {
        self.unix_nanos
    }

    pub fn is_zero(self) -> bool {
        self.unix_nanos.is_none()
    }

    /// RFC 3339 text as Go's `encoding/json` writes it.
    pub fn to_rfc3339(self) -> String {
        match self.unix_nanos {
            None => GO_ZERO_TIME.to_string(),
            Some(nanos) => DateTime::<Utc>::from_timestamp_nanos(nanos)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }

    /// Parses RFC 3339 text; Go's zero time and times before 1678 (outside `i64` nanoseconds)
    /// map to the zero time, as they cannot be meaningful deadlines here.
    pub fn parse_rfc3339(text: &str) -> Result<GoTime, String> {
        let parsed = DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("invalid time {text:?}: {e}"))?;
        Ok(match parsed.timestamp_nanos_opt() {
            Some(nanos) => GoTime::from_unix_nanos(nanos),
            None => GoTime::ZERO,
        })
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Go accepts null for a time.Time (leaving it zero); so do we.
        let text: Option<String> = Option::deserialize(deserializer)?;
        match text {
            None => Ok(GoTime::ZERO),
            Some(text) if text.is_empty() => Ok(GoTime::ZERO),
            Some(text) => GoTime::parse_rfc3339(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_time_round_trips_as_go_text() {
        let json = serde_json::to_string(&GoTime::ZERO).unwrap();
        assert_eq!(json, "\"0001-01-01T00:00:00Z\"");
        let back: GoTime = serde_json::from_str(&json).unwrap();
        assert!(back.is_zero());
    }

    #[test]
    fn fraction_is_trimmed_like_rfc3339nano() {
        let t = GoTime::from_unix_nanos(1_739_370_623_123_456_000);
        assert_eq!(t.to_rfc3339(), "2025-02-12T14:30:23.123456Z");
        let whole = GoTime::from_unix_nanos(1_739_370_623_000_000_000);
        assert_eq!(whole.to_rfc3339(), "2025-02-12T14:30:23Z");
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let t: GoTime = serde_json::from_str("\"2026-02-12T15:10:23.5+01:00\"").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-02-12T14:10:23.500Z");
    }

    #[test]
    fn null_and_garbage() {
        let t: GoTime = serde_json::from_str("null").unwrap();
        assert!(t.is_zero());
        let err = serde_json::from_str::<GoTime>("\"yesterday\"").unwrap_err();
        assert!(err.to_string().contains("invalid time"), "{err}");
    }
}

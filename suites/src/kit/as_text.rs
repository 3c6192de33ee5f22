//! Times as text a person can read in a recording, exact both ways: a duration as humantime
//! writes it (`2s 13ms 4us`), a timestamp as RFC 3339. For `#[serde(with = ...)]`.

/// A `Duration` as `2s 13ms`; `0s` for zero.
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// A `jiff::Timestamp` as RFC 3339 (`2026-11-18T11:06:40.013Z`).
pub mod timestamp {
    use k8s_openapi::jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use std::time::Duration;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super::duration")]
        d: Duration,
        #[serde(with = "super::timestamp")]
        t: k8s_openapi::jiff::Timestamp,
    }

    #[test]
    fn round_trips_exactly_and_reads_as_text() {
        let v = T {
            d: Duration::new(2, 13_004_001),
            t: k8s_openapi::jiff::Timestamp::new(1_795_000_000, 13_000_000).unwrap(),
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"{"d":"2s 13ms 4us 1ns","t":"2026-11-18T11:06:40.013Z"}"#
        );
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
    }
}

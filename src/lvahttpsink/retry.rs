//! The delivery policy of `lvahttpsink`: what an HTTP answer (or its absence) means for a
//! document, how long to wait before trying again, and how `Retry-After` is read.
//!
//! * 2xx: delivered.
//! * 408, 429, 503, a connection error or a timeout: the receiver is busy or away; the document
//!   is retried until it is delivered (the queue decides what is lost while waiting). 503 and 429
//!   wait for `Retry-After` when given.
//! * Other 5xx: the receiver failed on this document; retried up to `max-retries` times.
//! * Anything else (4xx, 3xx, 1xx): not retried; counted as failed.

use std::time::{Duration, SystemTime};

// The back-off lives in `crate::publish`, shared with the publishing sinks; re-exported here for
// the users of its old place.
pub use crate::publish::backoff::{Backoff, random_u64};

/// The longest `Retry-After` honoured, so that a wrong header cannot park the sink for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What to do with a document after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again, after `after` if the receiver said so. `limited` retries count against
    /// `max-retries`.
    Retry {
        after: Option<Duration>,
        limited: bool,
        reason: String,
    },
    /// Give up on this document.
    Fail(String),
}

/// The verdict for an HTTP status and its `Retry-After` header.
pub fn classify(status: u16, retry_after: Option<&str>, now: SystemTime) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 503 => Verdict::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
            limited: false,
            reason: format!("HTTP {status}"),
        },
        500..=599 => Verdict::Retry {
            after: None,
            limited: true,
            reason: format!("HTTP {status}"),
        },
        _ => Verdict::Fail(format!("HTTP {status}")),
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP-date; capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// A random (version 4) UUID, for `x-ms-client-request-id`.
pub fn request_id() -> String {
    let (a, b) = (random_u64(), random_u64());
    let v = ((a as u128) << 64) | b as u128;
    let v = (v & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(after: Option<u64>, limited: bool, status: u16) -> Verdict {
        Verdict::Retry {
            after: after.map(Duration::from_secs),
            limited,
            reason: format!("HTTP {status}"),
        }
    }

    #[test]
    fn statuses() {
        let now = SystemTime::now();
        assert_eq!(classify(200, None, now), Verdict::Delivered);
        assert_eq!(classify(204, None, now), Verdict::Delivered);
        assert_eq!(classify(503, Some("3"), now), retry(Some(3), false, 503));
        assert_eq!(classify(503, None, now), retry(None, false, 503));
        assert_eq!(classify(429, Some("1"), now), retry(Some(1), false, 429));
        assert_eq!(classify(408, None, now), retry(None, false, 408));
        assert_eq!(classify(500, Some("5"), now), retry(None, true, 500));
        assert_eq!(classify(502, None, now), retry(None, true, 502));
        for s in [400, 401, 403, 404, 413, 415, 301, 101] {
            assert_eq!(classify(s, None, now), Verdict::Fail(format!("HTTP {s}")));
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let p = |v| parse_retry_after(v, now);
        assert_eq!(p("120"), Some(Duration::from_secs(120)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            p("Sun, 06 Nov 1994 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(p("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(p("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(p("soon"), None);
        assert_eq!(p("-5"), None);
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}

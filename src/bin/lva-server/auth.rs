//! Optional request authentication: HTTP Basic users and Bearer tokens (RFC 7617, RFC 6750).

use gst::glib;

use crate::config::Auth;

/// Checks the `Authorization` header against the configured credentials.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// "user:password" pairs.
    basic: Vec<Vec<u8>>,
    bearer: Vec<Vec<u8>>,
}

impl Authenticator {
    pub fn new(auth: &Auth) -> Authenticator {
        Authenticator {
            basic: auth
                .basic
                .iter()
                .map(|u| format!("{}:{}", u.user, u.password).into_bytes())
                .collect(),
            bearer: auth.bearer.iter().map(|t| t.as_bytes().to_vec()).collect(),
        }
    }

    /// Whether the header carries one of the configured credentials.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        let Some((scheme, credentials)) = authorization.and_then(|a| a.trim().split_once(' '))
        else {
            return false;
        };
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = glib::base64_decode(credentials);
            self.basic.iter().any(|pair| same(pair, &decoded))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.bearer
                .iter()
                .any(|token| same(token, credentials.as_bytes()))
        } else {
            false
        }
    }

    /// The `WWW-Authenticate` challenges of a 401 answer.
    pub fn challenge(&self) -> String {
        let mut schemes = Vec::new();
        if !self.basic.is_empty() {
            schemes.push(r#"Basic realm="lva-server", charset="UTF-8""#);
        }
        if !self.bearer.is_empty() {
            schemes.push(r#"Bearer realm="lva-server""#);
        }
        schemes.join(", ")
    }
}

/// Compares without an early exit on the first differing byte, so the time taken does not tell
/// how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BasicUser;

    fn auth() -> Authenticator {
        Authenticator::new(&Auth {
            basic: vec![BasicUser {
                user: "lva".into(),
                password: "s3cret:x".into(),
            }],
            bearer: vec!["tok-123".into()],
        })
    }

    #[test]
    fn accepts_configured_basic_and_bearer_credentials() {
        let a = auth();
        let basic = format!("Basic {}", glib::base64_encode(b"lva:s3cret:x"));
        assert!(a.allows(Some(&basic)));
        assert!(a.allows(Some(&basic.replace("Basic", "basic"))));
        assert!(a.allows(Some("Bearer tok-123")));
        assert!(a.allows(Some("  bearer   tok-123 ")));
    }

    #[test]
    fn refuses_everything_else() {
        let a = auth();
        let wrong = format!("Basic {}", glib::base64_encode(b"lva:s3cret"));
        assert!(!a.allows(Some(&wrong)));
        assert!(!a.allows(Some("Basic !!!not base64")));
        assert!(!a.allows(Some("Bearer tok-12")));
        assert!(!a.allows(Some("Bearer tok-1234")));
        assert!(!a.allows(Some("Digest username=\"lva\"")));
        assert!(!a.allows(Some("tok-123")));
        assert!(!a.allows(None));
        assert_eq!(
            a.challenge(),
            r#"Basic realm="lva-server", charset="UTF-8", Bearer realm="lva-server""#
        );
    }
}

//! Request parameters from a query string or a form body, with Entra's notion of "missing"
//! (absent or empty).

use axum::http::Uri;

use super::aad_error::AadError;

/// Decoded `name=value` pairs; the first occurrence of a name wins.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The query string of `uri`.
    pub fn from_query(uri: &Uri) -> Self {
        Self::from_urlencoded(uri.query().unwrap_or("").as_bytes())
    }

    /// An `application/x-www-form-urlencoded` body (or query string).
    pub fn from_urlencoded(bytes: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or AADSTS900144.
    pub fn require(&self, name: &str) -> Result<&str, AadError> {
        self.get(name)
            .ok_or_else(|| AadError::missing_parameter(name))
    }

    /// Whether `name` is present at all (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

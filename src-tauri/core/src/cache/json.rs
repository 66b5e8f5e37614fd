//! The cache as JSON: MSAL's unified schema (read in one pass, unknown sections kept raw) plus
//! tokentray's own `tokentray` section in its own file, never in exports.

use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::TokenCache;
use crate::{Error, Result};

/// The section names of the unified schema, in the order tokentray writes them.
const SECTIONS: [&str; 5] = [
    "AccessToken",
    "RefreshToken",
    "IdToken",
    "Account",
    "AppMetadata",
];

/// The section name of [`AppState`].
const STATE_SECTION: &str = "tokentray";

impl TokenCache {
    /// Reads MSAL JSON. Empty or whitespace-only input is an empty cache, as in MSAL.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the text is not a JSON object of objects; the message says
    /// where (line and column), never what the file holds.
    pub fn from_json(bytes: &[u8], what: &str) -> Result<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::new());
        }
        let bad = |e: serde_json::Error| {
            Error::invalid(
                what,
                format!(
                    "not an MSAL token cache (invalid JSON at line {}, column {}: {})",
                    e.line(),
                    e.column(),
                    classify(&e)
                ),
            )
        };
        let mut cache: TokenCache = serde_json::from_slice(bytes).map_err(bad)?;
        cache.rebuild_index();
        Ok(cache)
    }

    /// The cache file's JSON: compact, with tokentray's state section. Zeroed when dropped.
    pub fn to_file_json(&self) -> Zeroizing<Vec<u8>> {
        let mut serializer = serde_json::Serializer::new(self.buffer());
        self.write(&mut serializer, true);
        Zeroizing::new(serializer.into_inner())
    }

    /// Pure MSAL JSON for other tools, indented by 4 like MSAL Python's `serialize()`, without
    /// tokentray's state. Zeroed when dropped.
    pub fn to_msal_json(&self) -> Zeroizing<Vec<u8>> {
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(self.buffer(), fmt);
        self.write(&mut serializer, false);
        Zeroizing::new(serializer.into_inner())
    }

    fn write<F: serde_json::ser::Formatter>(
        &self,
        serializer: &mut serde_json::Serializer<Vec<u8>, F>,
        with_state: bool,
    ) {
        let view = View {
            cache: self,
            with_state,
        };
        // Serializing strings and raw JSON into a Vec cannot fail.
        let written = view.serialize(serializer);
        debug_assert!(written.is_ok());
    }

    /// An output buffer big enough for the whole cache, so it is not reallocated (and no
    /// unzeroed copy of the tokens is left behind) while writing.
    fn buffer(&self) -> Vec<u8> {
        Vec::with_capacity(self.estimated_size())
    }

    fn estimated_size(&self) -> usize {
        self.access_tokens.len() * 1800 + self.refresh_tokens.len() * 1200 + 1024
    }
}

struct View<'a> {
    cache: &'a TokenCache,
    with_state: bool,
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let c = self.cache;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(SECTIONS[0], &c.access_tokens)?;
        map.serialize_entry(SECTIONS[1], &c.refresh_tokens)?;
        map.serialize_entry(SECTIONS[2], &c.id_tokens)?;
        map.serialize_entry(SECTIONS[3], &c.accounts)?;
        map.serialize_entry(SECTIONS[4], &c.app_metadata)?;
        for (name, raw) in &c.unknown_sections {
            map.serialize_entry(name, raw)?;
        }
        if self.with_state && !c.state.is_empty() {
            map.serialize_entry(STATE_SECTION, &c.state)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TokenCache {
    /// One pass over the text: known sections into typed entries, others kept raw.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Sections;
        impl<'de> serde::de::Visitor<'de> for Sections {
            type Value = TokenCache;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an MSAL token cache (a JSON object of sections)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<TokenCache, A::Error> {
                let mut cache = TokenCache::new();
                while let Some(name) = map.next_key::<String>()? {
                    match name.as_str() {
                        "AccessToken" => cache.access_tokens = map.next_value()?,
                        "RefreshToken" => cache.refresh_tokens = map.next_value()?,
                        "IdToken" => cache.id_tokens = map.next_value()?,
                        "Account" => cache.accounts = map.next_value()?,
                        "AppMetadata" => cache.app_metadata = map.next_value()?,
                        STATE_SECTION => cache.state = map.next_value()?,
                        _ => {
                            let raw: &'de RawValue = map.next_value()?;
                            cache.unknown_sections.insert(name, raw.to_owned());
                        }
                    }
                }
                Ok(cache)
            }
        }
        d.deserialize_map(Sections)
    }
}

pub(super) fn null_raw() -> Box<RawValue> {
    // `Box<RawValue>::default()` is JSON `null`.
    Box::default()
}

/// Describes a JSON error without quoting the input (it may hold tokens).
fn classify(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "the file ends early: truncated?",
        Category::Syntax => "syntax error",
        Category::Data => "a section or entry is not a JSON object",
        Category::Io => "read error",
    }
}

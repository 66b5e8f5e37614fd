//! The cache as JSON: MSAL's unified schema (read in one pass, unknown sections kept raw) plus
//! tokentray's own `tokentray` section in its own file, never in exports.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::TokenCache;
use super::schema::{Entity, RawObject};
use crate::json::write_str;
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
        Writer::new(self, None, true).cache()
    }

    /// Pure MSAL JSON for other tools, indented by 4 like MSAL Python's `serialize()`, without
    /// tokentray's state. Zeroed when dropped.
    pub fn to_msal_json(&self) -> Zeroizing<Vec<u8>> {
        Writer::new(self, Some(b"    "), false).cache()
    }
}

/// Writes a cache as serde_json would (compact, or with `PrettyFormatter`'s layout), byte for
/// byte, but with [`crate::json::write_str`] for the strings: serializing a 25 MB cache
/// through serde_json took longer than encrypting and writing it.
pub(super) struct Writer<'a> {
    cache: &'a TokenCache,
    /// Sized for the whole cache up front ([`Writer::size`]), so that it is not reallocated
    /// while writing: that would leave an unzeroed copy of the tokens behind (and copy 25 MB
    /// at 1,000 accounts).
    out: Zeroizing<Vec<u8>>,
    /// One level of indentation, or `None` for compact JSON.
    indent: Option<&'static [u8]>,
    depth: usize,
    /// tokentray's state section, serialized, if it is to be written.
    state: Option<Zeroizing<Vec<u8>>>,
}

impl<'a> Writer<'a> {
    /// A writer of `cache`, indented by `indent` (else compact), with tokentray's state section
    /// when `with_state` and there is any.
    fn new(cache: &'a TokenCache, indent: Option<&'static [u8]>, with_state: bool) -> Self {
        // Serializing a few small maps into a Vec cannot fail.
        let state = (with_state && !cache.state.is_empty())
            .then(|| Zeroizing::new(serde_json::to_vec(&cache.state).unwrap_or_default()));
        let size = Self::size(cache, indent.is_some()) + state.as_ref().map_or(0, |s| s.len());
        Self {
            cache,
            out: Zeroizing::new(Vec::with_capacity(size)),
            indent,
            depth: 0,
            state,
        }
    }

    /// What `cache`'s sections take written, but for the escapes in its strings (rare: tokens,
    /// ids and URLs need none): each member's name and value, and at most `member` bytes of
    /// punctuation and indentation around each (three levels deep when indented), twice that
    /// for an entry (its name, and its braces).
    pub(super) fn size(cache: &TokenCache, indented: bool) -> usize {
        let member = if indented { 8 + 4 * 3 } else { 8 };
        fn raw(object: &RawObject, member: usize) -> usize {
            object
                .iter()
                .map(|(name, raw)| name.len() + raw.get().len() + member)
                .sum()
        }
        fn section<E: Entity>(entries: &IndexMap<String, E>, member: usize) -> usize {
            let entry = |e: &E| -> usize {
                e.fields()
                    .map(|(name, value)| name.len() + value.len() + member)
                    .sum::<usize>()
                    + raw(e.extra(), member)
            };
            entries
                .iter()
                .map(|(key, e)| key.len() + 2 * member + entry(e))
                .sum::<usize>()
                + member
        }
        section(&cache.access_tokens, member)
            + section(&cache.refresh_tokens, member)
            + section(&cache.id_tokens, member)
            + section(&cache.accounts, member)
            + section(&cache.app_metadata, member)
            + raw(&cache.unknown_sections, member)
            + member
    }

    /// The whole cache: the five sections in [`SECTIONS`] order, the sections kept raw, and
    /// tokentray's state when it was asked for.
    fn cache(mut self) -> Zeroizing<Vec<u8>> {
        let c = self.cache;
        let mut first = self.open();
        self.key(&mut first, SECTIONS[0]);
        self.section(&c.access_tokens);
        self.key(&mut first, SECTIONS[1]);
        self.section(&c.refresh_tokens);
        self.key(&mut first, SECTIONS[2]);
        self.section(&c.id_tokens);
        self.key(&mut first, SECTIONS[3]);
        self.section(&c.accounts);
        self.key(&mut first, SECTIONS[4]);
        self.section(&c.app_metadata);
        for (name, raw) in &c.unknown_sections {
            self.key(&mut first, name);
            self.out.extend_from_slice(raw.get().as_bytes());
        }
        if let Some(state) = self.state.take() {
            self.key(&mut first, STATE_SECTION);
            self.out.extend_from_slice(&state);
        }
        self.close(first);
        self.out
    }

    fn section<E: Entity>(&mut self, entries: &IndexMap<String, E>) {
        let mut first = self.open();
        for (key, entry) in entries {
            self.key(&mut first, key);
            self.entity(entry);
        }
        self.close(first);
    }

    fn entity<E: Entity>(&mut self, entry: &E) {
        let mut first = self.open();
        for (name, value) in entry.fields() {
            self.key(&mut first, name);
            write_str(&mut self.out, value);
        }
        for (name, raw) in entry.extra() {
            self.key(&mut first, name);
            self.out.extend_from_slice(raw.get().as_bytes());
        }
        self.close(first);
    }

    /// Opens an object; `true`: no member yet.
    fn open(&mut self) -> bool {
        self.out.push(b'{');
        self.depth += 1;
        true
    }

    /// Starts the member `name`: the comma after the one before, its line, its name, the colon.
    fn key(&mut self, first: &mut bool, name: &str) {
        if !std::mem::take(first) {
            self.out.push(b',');
        }
        self.line();
        write_str(&mut self.out, name);
        self.out
            .extend_from_slice(if self.indent.is_some() { b": " } else { b":" });
    }

    /// Closes an object; `empty`: it has no member (`{}` on one line).
    fn close(&mut self, empty: bool) {
        self.depth -= 1;
        if !empty {
            self.line();
        }
        self.out.push(b'}');
    }

    /// A line break and the indentation of the current depth, when indenting.
    fn line(&mut self) {
        if let Some(indent) = self.indent {
            self.out.push(b'\n');
            for _ in 0..self.depth {
                self.out.extend_from_slice(indent);
            }
        }
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

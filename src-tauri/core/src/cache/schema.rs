//! The five entity types of MSAL's unified cache schema, as MSAL Python writes them
//! (ENTRA-PROTOCOL.md 5.2).
//!
//! Every known field is kept as the exact string found in the file, so a round trip does not
//! reformat anything. A field this version does not know, or a known one holding something other
//! than a string (`"home_account_id": null` for app tokens), goes to `extra` as raw JSON and is
//! written back byte-for-byte.

use indexmap::IndexMap;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use crate::secret::Secret;

/// A JSON object's members, in file order, each value kept as raw JSON text.
pub type RawObject = IndexMap<String, Box<RawValue>>;

/// A known field's value type: a JSON string, read into `String` or [`Secret`].
pub trait FieldValue: Sized {
    /// `Some` if `raw` is a JSON string.
    fn parse(raw: &RawValue) -> Option<Self>;
    /// The string to write.
    fn as_str(&self) -> &str;
}

/// The string a raw JSON value holds, if it is a string. Strings without escapes (all of MSAL's)
/// are sliced, not re-parsed.
fn raw_string(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str(text).ok()
    } else {
        Some(inner.to_string())
    }
}

impl FieldValue for String {
    fn parse(raw: &RawValue) -> Option<Self> {
        raw_string(raw)
    }
    fn as_str(&self) -> &str {
        self
    }
}

impl FieldValue for Secret {
    fn parse(raw: &RawValue) -> Option<Self> {
        raw_string(raw).map(Secret::new)
    }
    fn as_str(&self) -> &str {
        self.expose()
    }
}

/// An entry of one of the five sections, as it is written: its known fields that are set, in
/// schema order, then the members kept raw.
pub trait Entity {
    /// The known fields that are set, in schema order, with their values.
    fn fields(&self) -> impl Iterator<Item = (&'static str, &str)>;
    /// The members this version does not know (or whose value is not a string), as read.
    fn extra(&self) -> &RawObject;
}

macro_rules! entity {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: Option<$ty>,)*
            /// Members this version does not know (or known ones that are not strings),
            /// kept verbatim.
            pub extra: RawObject,
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> serde::de::Visitor<'de> for Fields {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut out = $name::default();
                        // Values are borrowed from the input (always a byte slice here): a known
                        // field is copied once into its string, an unknown one into its box.
                        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                            let value: &'de RawValue = map.next_value()?;
                            match name.as_ref() {
                                $(stringify!($field) => {
                                    if let Some(parsed) = <$ty as FieldValue>::parse(value) {
                                        out.$field = Some(parsed);
                                        continue;
                                    }
                                })*
                                _ => {}
                            }
                            out.extra.insert(name.into_owned(), value.to_owned());
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(Fields)
            }
        }

        impl Entity for $name {
            fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
                [$((stringify!($field), self.$field.as_ref().map(FieldValue::as_str))),*]
                    .into_iter()
                    .filter_map(|(name, value)| Some((name, value?)))
            }

            fn extra(&self) -> &RawObject {
                &self.extra
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                for (name, value) in self.fields() {
                    map.serialize_entry(name, value)?;
                }
                for (name, value) in &self.extra {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    };
}

entity! {
    /// An `AccessToken` entry.
    AccessToken {
        /// Always `"AccessToken"`.
        credential_type: String,
        /// The access token.
        secret: Secret,
        /// `{uid}.{utid}`; absent (null) for app-only tokens.
        home_account_id: String,
        /// Authority host without port, lower-cased.
        environment: String,
        /// The client (application) id that obtained it.
        client_id: String,
        /// The tenant segment of the authority used (`organizations`, a GUID, ...).
        realm: String,
        /// Granted scopes, space-joined and sorted.
        target: String,
        /// Usually `Bearer`.
        token_type: String,
        /// Epoch seconds (decimal string) when cached.
        cached_at: String,
        /// Epoch seconds when it expires.
        expires_on: String,
        /// Epoch seconds of the extended expiry.
        extended_expires_on: String,
        /// Epoch seconds after which it should be refreshed proactively.
        refresh_on: String,
        /// Key id for PoP / SSH-certificate tokens.
        key_id: String,
    }
}

entity! {
    /// A `RefreshToken` entry.
    RefreshToken {
        /// Always `"RefreshToken"`.
        credential_type: String,
        /// The refresh token.
        secret: Secret,
        /// `{uid}.{utid}`.
        home_account_id: String,
        /// Authority host.
        environment: String,
        /// The client id that obtained it.
        client_id: String,
        /// Scopes it was obtained with (optional in the schema).
        target: String,
        /// Epoch seconds of the last rotation.
        last_modification_time: String,
        /// `"1"` for family-of-client-ids (FOCI) refresh tokens.
        family_id: String,
        /// MSAL JS may write a realm; MSAL Python does not.
        realm: String,
    }
}

entity! {
    /// An `IdToken` entry.
    IdToken {
        /// Always `"IdToken"`.
        credential_type: String,
        /// The id token (a JWT).
        secret: Secret,
        /// `{uid}.{utid}`.
        home_account_id: String,
        /// Authority host.
        environment: String,
        /// Tenant segment.
        realm: String,
        /// Client id.
        client_id: String,
    }
}

entity! {
    /// An `Account` entry.
    Account {
        /// `{uid}.{utid}`.
        home_account_id: String,
        /// Authority host.
        environment: String,
        /// Tenant segment.
        realm: String,
        /// The object id in the tenant (`oid`, else `sub`).
        local_account_id: String,
        /// `preferred_username` (never null; may be empty).
        username: String,
        /// `MSSTS` (Entra v2, incl. MSA) or `ADFS`.
        authority_type: String,
        /// How the account was established (`authorization_code`, device code URN, ...).
        account_source: String,
        /// Display name (MSAL JS writes it; MSAL Python does not).
        name: String,
    }
}

entity! {
    /// An `AppMetadata` entry.
    AppMetadata {
        /// Client id.
        client_id: String,
        /// Authority host.
        environment: String,
        /// `"1"` if the app is in the Microsoft family of client ids.
        family_id: String,
    }
}

/// Parses a decimal epoch-seconds string as MSAL writes it.
pub fn epoch(value: &Option<String>) -> Option<i64> {
    value.as_deref().and_then(|v| v.trim().parse().ok())
}

/// MSAL Python's key for an access token.
pub fn access_token_key(e: &AccessToken) -> String {
    key(&[&e.home_account_id, &e.environment])
        + "-accesstoken-"
        + &key(&[&e.client_id, &e.realm, &e.target])
}

/// MSAL Python's key for a refresh token (realm is empty: refresh tokens are cross-tenant).
pub fn refresh_token_key(e: &RefreshToken) -> String {
    key(&[&e.home_account_id, &e.environment])
        + "-refreshtoken-"
        + &key(&[&e.client_id, &None, &e.target])
}

/// MSAL Python's key for an id token.
pub fn id_token_key(e: &IdToken) -> String {
    key(&[&e.home_account_id, &e.environment])
        + "-idtoken-"
        + &key(&[&e.client_id, &e.realm, &None])
}

/// MSAL Python's key for an account.
pub fn account_key(e: &Account) -> String {
    key(&[&e.home_account_id, &e.environment, &e.realm])
}

/// MSAL Python's key for app metadata (not lower-cased, as in MSAL Python).
pub fn app_metadata_key(e: &AppMetadata) -> String {
    format!(
        "appmetadata-{}-{}",
        e.environment.as_deref().unwrap_or(""),
        e.client_id.as_deref().unwrap_or("")
    )
}

fn key(parts: &[&Option<String>]) -> String {
    parts
        .iter()
        .map(|p| p.as_deref().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase()
}

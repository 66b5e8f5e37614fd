//! Entry points for the fuzz targets in `tests/fuzz/` (`cargo fuzz`), built only with the
//! `fuzzing` feature. Not an API.
//!
//! Each `pub fn NAME(data: &[u8])` feeds untrusted bytes to the real code that receives them in
//! production (no copies of it, no mocks) and must return normally for every input: a panic, an
//! abort or a hang is a bug of the code it drives, to be fixed there. Where a function asserts
//! something, the assertion is a guarantee of that code (for instance that the cache file
//! tokentray writes reads back). `make test` replays the committed corpora and crash inputs
//! through the same functions (`tests/e2e/fuzz_corpora.rs`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri};
use base64::Engine as _;

use crate::cache::{
    AccountInfo, AtQuery, ClientInfo, EXPIRY_SKEW_SECS, Grant, IdTokenClaims, RealmPreference,
    TokenCache, TokenEvent, TokenResponse, decode_part, select_account,
};
use crate::config::{Config, DEFAULT_CLIENT_ID};
use crate::flow::device_code::{Answer, DeviceCode};
use crate::flow::{Failure, read_answer};

/// The scope the fixtures' tokens were granted (what `login` asks for in the public cloud).
const DEFAULT_LOGIN_SCOPE: &str = "https://management.core.windows.net//.default";
use crate::persist::{PersistedCache, envelope};
use crate::secret::{DataKey, Secret};
use crate::tokens::{Tokens, find_token};

/// The time the harness runs at (2026-01-01T00:00:00Z), epoch seconds.
const NOW: i64 = 1_767_225_600;

/// Times every lookup is tried at: the epoch, the ends of `i64`, a real time.
const NOWS: [i64; 4] = [0, i64::MAX, i64::MIN, NOW];

/// Scope sets every lookup is tried with: ARM as Azure CLI and as azure-identity spell it, a
/// bare `.default`, Graph with a reserved scope, and none.
const SCOPE_SETS: [&[&str]; 5] = [
    &[DEFAULT_LOGIN_SCOPE],
    &["https://management.core.windows.net/.default"],
    &["/.default"],
    &["https://graph.microsoft.com/User.Read", "openid"],
    &[],
];

/// The authority host the cache and token targets use.
const ENVIRONMENT: &str = "login.microsoftonline.com";

/// The key [`envelope`] opens with; the corpus's envelopes are sealed under it.
pub const ENVELOPE_KEY: [u8; 32] = *b"tokentray fuzzing envelope key!!";

/// The endpoint secret of [`endpoint_request`]'s instance; `$SECRET` in a request's header
/// values stands for it.
pub const ENDPOINT_SECRET: &str = "fuzz-endpoint-secret-0123456789abcdefghijkl";

/// MSAL cache JSON: [`TokenCache::from_json`] of the input up to its first NUL byte; if that
/// parses, the rest (if any) is taken as a token endpoint answer and ingested three times (as a
/// sign-in by code, by device code, and as the refresh of the cache's first refresh token), then
/// every account is listed, looked up with [`SCOPE_SETS`] at [`NOWS`] (access tokens, refresh
/// token candidates), selected, merged and removed.
///
/// Guarantees: the cache file and the MSAL export tokentray writes read back, and writing what
/// was read back gives the same bytes.
pub fn cache_json(data: &[u8]) {
    let (cache_part, response_part) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
    };
    let Ok(mut cache) = TokenCache::from_json(cache_part, "fuzz input") else {
        return;
    };
    if let Some(body) = response_part {
        let used = cache.refresh_tokens().keys().next().cloned();
        let refresh = Grant::RefreshToken {
            used: used.as_deref().unwrap_or_default(),
        };
        for (grant, now) in [
            (Grant::AuthorizationCode, NOW),
            (Grant::DeviceCode, 0),
            (refresh, i64::MAX),
        ] {
            ingest_answer(&mut cache, body, grant, now);
        }
    }
    look_up_everything(&cache);
    assert_round_trips(&cache);
}

/// The encrypted cache file: [`envelope::key_store_tag`] and [`envelope::open`] of the input
/// under [`ENVELOPE_KEY`] (and, what opens, read as a cache), then [`envelope::seal`] of the
/// input.
///
/// Guarantees: what is sealed opens to the same bytes, with the key store tag it was sealed
/// with.
pub fn envelope(data: &[u8]) {
    let Some(key) = DataKey::from_slice(&ENVELOPE_KEY) else {
        return;
    };
    let _ = envelope::key_store_tag(data);
    let _ = envelope::key_ref(data);
    if let Ok(plain) = envelope::open(&key, zeroize::Zeroizing::new(data.to_vec())) {
        let _ = TokenCache::from_json(&plain, "fuzz input").map(|c| c.accounts());
    }
    let tag = data.first().copied().unwrap_or(1);
    let id = envelope::KeyId::of_path(std::path::Path::new("/fuzz/data/cache.bin"));
    if let Ok(sealed) = envelope::seal(&key, tag, id, zeroize::Zeroizing::new(data.to_vec())) {
        let sealed = sealed.to_vec();
        assert!(envelope::key_store_tag(&sealed) == Some(tag));
        let opened = envelope::open(&key, zeroize::Zeroizing::new(sealed));
        assert!(
            opened.is_ok_and(|plain| *plain == data),
            "sealed bytes must open"
        );
    }
}

/// The loopback endpoint: the input as a request (`METHOD TARGET` on the first line, then
/// `Name: value` header lines, in which `$SECRET` stands for [`ENDPOINT_SECRET`]; after an empty
/// line, the body) through the real endpoint (security layer, routes, token lookups and refresh
/// attempts) of one instance with two accounts on an in-memory store, whose authority,
/// `https://127.0.0.1:1`, refuses connections at once. The response body is read to its end.
/// Requests the HTTP layer could not carry (a method, URI or header it refuses) are skipped.
///
/// # Panics
/// Only if that instance cannot be set up, which no input affects.
pub fn endpoint_request(data: &[u8]) {
    let Some(request) = http_request(data) else {
        return;
    };
    let endpoint = ENDPOINT.get_or_init(Endpoint::new);
    endpoint.runtime.block_on(async {
        let response = crate::serve::respond_to(&endpoint.state, request).await;
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    });
}

/// Entra's answers: the input's first byte picks the endpoint (bit 0: token, or device code)
/// and the HTTP status (bits 1-3, from 200, 400, 401, 429, 500, 503, 302, 404; bit 4 adds a
/// huge `Retry-After`), the rest is the body. It goes through the classification every answer
/// of Entra gets (`flow::read_answer`); a token response is ingested into an empty cache and
/// looked up, a device code answer becomes the sign-in shown to the user, an OAuth error the
/// error the user sees.
pub fn entra_response(data: &[u8]) {
    const STATUSES: [u16; 8] = [200, 400, 401, 429, 500, 503, 302, 404];
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(selector >> 1) % STATUSES.len()];
    let retry_after = (selector & 0x10 != 0).then_some(u64::MAX);
    let origin = "https://login.microsoftonline.com";
    if selector & 1 == 0 {
        match read_answer::<TokenResponse>(origin, status, retry_after, body) {
            Ok(_) => {
                let mut cache = TokenCache::new();
                ingest_answer(&mut cache, body, Grant::DeviceCode, NOW);
                look_up_everything(&cache);
                assert_round_trips(&cache);
            }
            Err(failure) => describe(failure),
        }
    } else {
        match read_answer::<Answer>(origin, status, retry_after, body) {
            Ok(answer) => {
                let scopes = [DEFAULT_LOGIN_SCOPE.to_string()];
                let code = DeviceCode::from_answer(answer, "organizations", &scopes);
                let _ = (code.message.len(), code.tenant(), code.scopes());
            }
            Err(failure) => describe(failure),
        }
    }
}

/// id_token and client_info decoding: [`decode_part`], [`ClientInfo::decode`] and
/// [`IdTokenClaims::decode`] of the input as text, and of the input base64url-encoded (as a
/// token's payload, padded and not) so that its bytes reach the JSON parser.
pub fn claims(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = decode_part(&text);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    let padded = base64::engine::general_purpose::STANDARD.encode(data);
    for info in [&*text, &encoded, &padded] {
        if let Some(ci) = ClientInfo::decode(info) {
            let _ = ci.home_account_id();
        }
    }
    for token in [
        text.into_owned(),
        format!("e30.{encoded}.c2ln"),
        format!("e30.{padded}"),
    ] {
        if let Some(claims) = IdTokenClaims::decode(&Secret::new(token)) {
            let _ = (claims.username(), claims.aud.contains(DEFAULT_CLIENT_ID));
        }
    }
}

/// Ingests `body`, classified as a 200 answer of the token endpoint, as `grant` at `now`.
fn ingest_answer(cache: &mut TokenCache, body: &[u8], grant: Grant<'_>, now: i64) {
    let Ok(response) = read_answer::<TokenResponse>(ENVIRONMENT, 200, None, body) else {
        return;
    };
    let scopes = [DEFAULT_LOGIN_SCOPE.to_string()];
    let event = TokenEvent {
        client_id: DEFAULT_CLIENT_ID,
        environment: ENVIRONMENT,
        realm: "organizations",
        requested_scopes: &scopes,
        grant,
    };
    let _ = cache.ingest(&event, response, now);
}

/// Every lookup a running instance makes, for every account the cache has (and every
/// `home_account_id` its access tokens name), with each of [`SCOPE_SETS`] at each of [`NOWS`].
fn look_up_everything(cache: &TokenCache) {
    let config = Config::defaults(Path::new("/nonexistent/config.toml"));
    let mut accounts = cache.accounts();
    for at in cache.access_tokens().values().take(8) {
        accounts.push(AccountInfo {
            home_account_id: at.home_account_id.clone().unwrap_or_default(),
            environment: at.environment.clone().unwrap_or_default(),
            username: String::new(),
            name: None,
            local_account_id: None,
            home_tenant: None,
            realms: Vec::new(),
            is_default: false,
            needs_sign_in: None,
        });
    }
    for account in accounts.iter().take(16) {
        let _ = cache.refresh_token_candidates(
            &account.home_account_id,
            &account.environment,
            DEFAULT_CLIENT_ID,
        );
        for scopes in SCOPE_SETS {
            let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_string()).collect();
            for now in NOWS {
                for tenant in [None, Some("organizations"), account.home_tenant.as_deref()] {
                    let _ = find_token(cache, &config, account, &scopes, tenant, now, 0);
                    let _ = find_token(
                        cache,
                        &config,
                        account,
                        &scopes,
                        tenant,
                        now,
                        EXPIRY_SKEW_SECS,
                    );
                }
                let query = AtQuery {
                    home_account_id: &account.home_account_id,
                    environment: &account.environment,
                    client_id: DEFAULT_CLIENT_ID,
                    realm: RealmPreference::Any,
                    scopes: &scopes,
                };
                let _ = cache.find_access_token(&query, now, i64::MIN);
            }
        }
        let _ = select_account(&accounts, Some(&account.username));
    }
    let _ = select_account(&accounts, None);
    let mut merged = TokenCache::new();
    merged.merge(cache.clone());
    merged.remove_expired(NOW);
    if let Some(first) = accounts.first() {
        merged.remove_account(
            &first.home_account_id,
            &first.environment,
            DEFAULT_CLIENT_ID,
        );
    }
    assert_round_trips(&merged);
}

/// The cache file and the MSAL export read back, and rewriting them is stable.
fn assert_round_trips(cache: &TokenCache) {
    for (written, export) in [(cache.to_file_json(), false), (cache.to_msal_json(), true)] {
        let reread = TokenCache::from_json(&written, "own output");
        assert!(reread.is_ok(), "tokentray must read back what it writes");
        if let Ok(reread) = reread {
            let again = if export {
                reread.to_msal_json()
            } else {
                reread.to_file_json()
            };
            assert!(
                *again == *written,
                "rewriting what was read must not change it"
            );
        }
    }
}

/// Uses a failed answer the way callers do: its message, code and class.
fn describe(failure: Failure) {
    match failure {
        Failure::OAuth(e) => {
            let _ = (e.needs_interaction(), e.summary());
            let error = e.into_error("fuzz@example.com");
            let _ = (error.to_string(), error.code(), error.is_transient());
        }
        Failure::Other(error) => {
            let _ = (error.to_string(), error.code(), error.is_transient());
        }
    }
}

/// Parses `METHOD TARGET\nName: value\n...\n\nbody` into a request; `None` if the HTTP layer
/// would not carry it.
fn http_request(data: &[u8]) -> Option<Request<Body>> {
    let mut rest = data;
    let mut next_line = || {
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = tail;
        line.strip_suffix(b"\r").unwrap_or(line)
    };
    let first = next_line();
    let space = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..space]).ok()?;
    let uri = Uri::try_from(&first[space + 1..]).ok()?;
    let mut request = Request::builder().method(method).uri(uri);
    loop {
        let line = next_line();
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = replace_secret(line[colon + 1..].trim_ascii_start());
        request = request.header(name, HeaderValue::from_bytes(&value).ok()?);
    }
    request.body(Body::from(rest.to_vec())).ok()
}

/// `value` with each `$SECRET` replaced by [`ENDPOINT_SECRET`].
fn replace_secret(value: &[u8]) -> Vec<u8> {
    const MARK: &[u8] = b"$SECRET";
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.windows(MARK.len()).position(|w| w == MARK) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(ENDPOINT_SECRET.as_bytes());
        rest = &rest[at + MARK.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The instance [`endpoint_request`] drives, set up on first use.
static ENDPOINT: OnceLock<Endpoint> = OnceLock::new();

struct Endpoint {
    runtime: tokio::runtime::Runtime,
    state: Arc<crate::serve::EndpointState>,
}

impl Endpoint {
    /// An instance at [`NOW`] on an in-memory store, its authority unreachable, secret
    /// [`ENDPOINT_SECRET`], with two accounts signed in (as their token responses are
    /// ingested): Alice, the default, with a refresh token, a valid ARM token and a Graph token
    /// due for refresh; Bob with only an ARM token, due, and no refresh token.
    ///
    /// # Panics
    /// If it cannot be set up. It does not depend on the input: were it skipped, every input
    /// would be, and the fuzzer would test nothing.
    #[allow(clippy::expect_used)]
    fn new() -> Self {
        Self::set_up().expect("the fuzzing endpoint instance must set up")
    }

    fn set_up() -> crate::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::Error::invalid("fuzzing runtime", e.to_string()))?;
        let mut config = Config::defaults(Path::new("/nonexistent/tokentray-fuzz/config.toml"));
        config.authority = "https://127.0.0.1:1".into();
        let store = PersistedCache::in_memory();
        let environment = "127.0.0.1";
        store.update(NOW, |c| {
            let alice = ("alice", "00000000-0000-0000-0000-00000000a11c", "t-contoso");
            let bob = ("bob", "00000000-0000-0000-0000-000000000b0b", "t-fabrikam");
            for (user, oid, tid, scope, expires_in, refresh) in [
                (alice, alice.1, alice.2, DEFAULT_LOGIN_SCOPE, 3600, true),
                (
                    alice,
                    alice.1,
                    alice.2,
                    "https://graph.microsoft.com/User.Read",
                    120,
                    true,
                ),
                (bob, bob.1, bob.2, DEFAULT_LOGIN_SCOPE, 200, false),
            ] {
                let scopes = [scope.to_string()];
                let event = TokenEvent {
                    client_id: DEFAULT_CLIENT_ID,
                    environment,
                    realm: "organizations",
                    requested_scopes: &scopes,
                    grant: Grant::AuthorizationCode,
                };
                c.ingest(
                    &event,
                    sign_in_response(user.0, oid, tid, scope, expires_in, refresh),
                    NOW,
                )?;
            }
            c.state.default_account = Some(format!("{}.{}", alice.1, alice.2));
            c.state.endpoint_secret = Some(Secret::new(ENDPOINT_SECRET.into()));
            Ok(())
        })?;
        let tokens = Tokens::new(config, store, Arc::new(|| NOW))?;
        let state = crate::serve::state_for(Arc::new(tokens));
        Ok(Self { runtime, state })
    }
}

/// Entra's answer to `user`'s sign-in (with id_token and client_info, as fake-entra sends it).
fn sign_in_response(
    user: &str,
    oid: &str,
    tid: &str,
    scope: &str,
    expires_in: i64,
    with_refresh_token: bool,
) -> TokenResponse {
    let b64 = |json: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    };
    let claims = serde_json::json!({
        "aud": DEFAULT_CLIENT_ID, "oid": oid, "tid": tid, "sub": format!("sub-{user}"),
        "preferred_username": format!("{user}@example.com"), "name": user,
    });
    TokenResponse {
        token_type: Some("Bearer".into()),
        scope: Some(scope.into()),
        expires_in: Some(expires_in),
        access_token: Some(Secret::new(format!("at-{user}-{scope}"))),
        refresh_token: with_refresh_token.then(|| Secret::new(format!("rt-{user}"))),
        id_token: Some(Secret::new(format!("e30.{}.c2ln", b64(claims)))),
        client_info: Some(b64(serde_json::json!({"uid": oid, "utid": tid}))),
        foci: Some("1".into()),
        ..TokenResponse::default()
    }
}

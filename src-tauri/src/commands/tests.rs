//! The commands through tauri's IPC on the mock runtime (no display), against fake-entra: what
//! the window sends and gets back, including the `{code, message}` errors.

use std::sync::Arc;

use serde_json::{Value, json};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};
use tokentray_core::clock::system_clock;
use tokentray_core::config::Config;
use tokentray_core::desktop::Desktop;
use tokentray_core::paths::Paths;
use tokentray_core::tokens::Tokens;
use tokentray_tests::fake_entra::{FakeConfig, FakeEntra};
use tokentray_tests::harness::config_against;

const ALICE: &str = "alice@contoso.example";
const BOB: &str = "bob@fabrikam.example";
const PW: &str = "correct horse";

struct Window {
    _app: App<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
    home: tempfile::TempDir,
    fake: FakeEntra,
}

impl Window {
    fn open() -> Self {
        let fake = FakeEntra::start(
            FakeConfig {
                device_code_interval: 1,
                ..FakeConfig::default()
            }
            .user(ALICE, PW)
            .user(BOB, PW),
        )
        .unwrap();
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path());
        let config = config_against(&fake, home.path());
        let store = config.open_store(&paths).unwrap();
        let tokens = Arc::new(Tokens::new(config, store, system_clock()).unwrap());
        let desktop = Arc::new(Desktop::new(paths, tokens));
        let app = super::handler(mock_builder())
            .manage(desktop)
            .build(mock_context(noop_assets()))
            .unwrap();
        let webview = WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        Self {
            _app: app,
            webview,
            home,
            fake,
        }
    }

    fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        invoke(&self.webview, cmd, args)
    }

    fn overview(&self) -> Value {
        self.call("overview", json!({})).unwrap()
    }

    /// Device code sign-in as the window does it; the test approves on /devicelogin.
    fn sign_in(&self, user: &str) -> Value {
        let code = self.call("start_device_code", json!({})).unwrap();
        let user_code = code["user_code"].as_str().unwrap().to_string();
        assert!(code["expires_on"].as_i64().unwrap() > tokentray_core::clock::now());
        tauri::async_runtime::block_on(self.fake.approve_device_code(&user_code, user, PW));
        self.call("finish_device_code", json!({})).unwrap()
    }
}

fn invoke(webview: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        webview,
        InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            // The app's own origin on Linux and macOS (remote origins need a capability).
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().unwrap())
}

fn usernames(overview: &Value) -> Vec<(String, bool)> {
    overview["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["username"].as_str().unwrap().to_string(),
                a["is_default"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn device_code_sign_in_switch_and_sign_out_through_the_commands() {
    let w = Window::open();
    let empty = w.overview();
    assert_eq!(empty["accounts"], json!([]));
    assert_eq!(empty["settings"]["store"], "plaintext");
    assert_eq!(empty["endpoint"]["status"], "starting");

    let alice = w.sign_in(ALICE);
    assert_eq!(alice["username"], ALICE);
    let view = w.overview();
    assert_eq!(usernames(&view), [(ALICE.to_string(), true)]);
    let token = &view["accounts"][0]["tokens"][0];
    assert_eq!(token["resource"], "https://management.core.windows.net/");
    let now = view["now"].as_i64().unwrap();
    assert!(
        token["expires_on"].as_i64().unwrap() > now + 3000,
        "{token}"
    );
    assert!(token.get("secret").is_none() && !view.to_string().contains("eyJ"));

    let bob = w.sign_in(BOB);
    let bob_id = bob["home_account_id"].as_str().unwrap();
    assert_eq!(
        usernames(&w.overview()),
        [(ALICE.to_string(), true), (BOB.to_string(), false)],
        "a second sign-in does not take over the default"
    );
    let switched = w
        .call("switch_account", json!({"account": bob_id}))
        .unwrap();
    assert_eq!(switched["is_default"], true);
    assert_eq!(
        usernames(&w.overview()),
        [(BOB.to_string(), true), (ALICE.to_string(), false)]
    );

    let alice_id = alice["home_account_id"].as_str().unwrap();
    w.call("sign_out", json!({"account": alice_id})).unwrap();
    assert_eq!(usernames(&w.overview()), [(BOB.to_string(), true)]);
}

#[test]
fn errors_reach_the_window_as_code_and_message() {
    let w = Window::open();
    let missing = w
        .call("switch_account", json!({"account": "nobody@example.com"}))
        .unwrap_err();
    assert_eq!(missing["code"], "no_account");
    assert!(
        missing["message"].as_str().unwrap().contains("Sign in"),
        "{missing}"
    );

    w.sign_in(ALICE);
    let unknown = w
        .call("sign_out", json!({"account": "nobody@example.com"}))
        .unwrap_err();
    assert_eq!(unknown["code"], "account_not_found", "{unknown}");
    assert_eq!(usernames(&w.overview()).len(), 1, "nothing was removed");

    let nothing_pending = w.call("finish_device_code", json!({})).unwrap_err();
    assert_eq!(nothing_pending["code"], "invalid_input");
}

#[test]
fn cancel_ends_a_waiting_device_code_sign_in() {
    let w = Window::open();
    let code = w.call("start_device_code", json!({})).unwrap();
    assert!(!code["user_code"].as_str().unwrap().is_empty());
    let webview = w.webview.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        invoke(&webview, "cancel_sign_in", json!({})).unwrap();
    });
    let cancelled = w.call("finish_device_code", json!({})).unwrap_err();
    canceller.join().unwrap();
    assert_eq!(cancelled["code"], "sign_in_cancelled", "{cancelled}");
    assert_eq!(w.overview()["accounts"], json!([]));
}

#[test]
fn settings_are_validated_before_anything_is_written() {
    let w = Window::open();
    let config_file = Paths::under(w.home.path()).config_file();
    let good = json!({
        "authority": w.fake.url(),
        "tenant": "organizations",
        "client_id": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "port": 42117,
        "start_at_login": false,
        "plaintext": true,
    });
    let with = |key: &str, value: Value| {
        let mut s = good.clone();
        s[key] = value;
        json!({ "settings": s })
    };
    for (key, value, mentions) in [
        ("port", json!(0), "65535"),
        ("port", json!(70000), "65535"),
        ("authority", json!("http://login.example.com"), "https"),
        ("client_id", json!("my-app"), "GUID"),
        ("tenant", json!("a/b"), "tenant"),
        ("tenant", json!("contoso corp!"), "domain"),
    ] {
        let err = w.call("save_settings", with(key, value)).unwrap_err();
        assert_eq!(err["code"], "invalid_input", "{key}: {err}");
        assert_eq!(err["field"], key, "{key}: the error names its input: {err}");
        assert!(err["message"].as_str().unwrap().contains(mentions), "{err}");
        assert!(!config_file.exists(), "{key}: nothing is written on error");
    }

    let saved = w.call("save_settings", with("port", json!(42999))).unwrap();
    assert!(
        saved["notice"]
            .as_str()
            .unwrap()
            .contains("start tokentray again"),
        "{saved}"
    );
    let written = Config::load(&config_file).unwrap();
    assert_eq!(written.port, 42999);
    assert_eq!(written.authority, w.fake.url());
    assert!(written.allow_unencrypted_storage);
}

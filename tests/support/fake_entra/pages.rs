//! The HTML the fake serves: sign-in, device login, the form_post relay and message pages.
//! Plain server-rendered forms (no script except the form_post auto-submit), so they work in a
//! real browser and under plain form posts alike.

use axum::extract::Query;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML response that is never cached or framed.
pub fn html(document: String) -> Response {
    let mut response = axum::response::Html(document).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

const STYLE: &str = "body{font-family:'Segoe UI',system-ui,sans-serif;background:#f2f2f2;margin:0}\
main{max-width:440px;margin:8vh auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
.brand{font-weight:600;color:#737373}h1{font-size:24px;font-weight:600;margin:16px 0}\
label{display:block;margin-top:12px;font-size:14px}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:6px 0;border:0;\
border-bottom:1px solid #666;font-size:15px}\
.actions{display:flex;gap:8px;justify-content:flex-end;margin-top:24px}\
button{min-width:108px;padding:6px 12px;border:0;background:#0067b8;color:#fff;font-size:15px}\
button.secondary{background:#ccc;color:#000}.error{color:#e81123;margin:8px 0}\
.app{color:#555;font-size:13px}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\
         <body><main><div class=\"brand\">fake-entra</div>{body}</main></body></html>\n",
        escape(title)
    )
}

fn error_block(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!(
            "<div id=\"error\" class=\"error\" role=\"alert\">{}</div>",
            escape(e)
        )
    })
}

/// The sign-in page: one form with `username` and `password`, a sign-in button (the default,
/// pressed by Enter) and a cancel button.
pub struct SignInPage<'a> {
    /// Where the form posts (the authorize path).
    pub action: &'a str,
    /// The pending sign-in's id.
    pub flow: &'a str,
    /// The application signing in.
    pub client_id: &'a str,
    /// Prefilled username (`login_hint`, or what was typed before an error).
    pub username: &'a str,
    /// Why the previous attempt failed.
    pub error: Option<&'a str>,
}

impl SignInPage<'_> {
    /// The HTML.
    pub fn render(&self) -> String {
        let body = format!(
            "<h1>Sign in</h1><p class=\"app\">to continue to application <span id=\"client\">{client}</span></p>\
             {error}\
             <form method=\"post\" action=\"{action}\" autocomplete=\"off\">\
             <input type=\"hidden\" name=\"flow\" value=\"{flow}\">\
             <label for=\"username\">Email, phone, or Skype</label>\
             <input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" \
             autocomplete=\"username\" required autofocus>\
             <label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" \
             autocomplete=\"current-password\" required>\
             <div class=\"actions\">\
             <button type=\"submit\" id=\"signin\" name=\"action\" value=\"signin\">Sign in</button>\
             <button type=\"submit\" id=\"cancel\" name=\"action\" value=\"cancel\" \
             class=\"secondary\" formnovalidate>Cancel</button>\
             </div></form>",
            client = escape(self.client_id),
            error = error_block(self.error),
            action = escape(self.action),
            flow = escape(self.flow),
            username = escape(self.username),
        );
        document("Sign in to your account", &body)
    }
}

/// The device-login page: `user_code`, `username`, `password`, and `action` = approve/decline.
pub struct DeviceLoginPage<'a> {
    /// Prefilled code (`?otc=`, or what was typed before an error).
    pub user_code: &'a str,
    /// Prefilled username.
    pub username: &'a str,
    /// Why the previous attempt failed.
    pub error: Option<&'a str>,
}

impl DeviceLoginPage<'_> {
    /// The HTML.
    pub fn render(&self) -> String {
        let body = format!(
            "<h1>Enter code</h1><p>Enter the code displayed on your app or device, then sign in \
             to allow access.</p>{error}\
             <form method=\"post\" action=\"/devicelogin\" autocomplete=\"off\">\
             <label for=\"user_code\">Code</label>\
             <input type=\"text\" id=\"user_code\" name=\"user_code\" value=\"{code}\" required autofocus>\
             <label for=\"username\">Email, phone, or Skype</label>\
             <input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" \
             autocomplete=\"username\" required>\
             <label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" \
             autocomplete=\"current-password\" required>\
             <div class=\"actions\">\
             <button type=\"submit\" id=\"approve\" name=\"action\" value=\"approve\">Continue</button>\
             <button type=\"submit\" id=\"decline\" name=\"action\" value=\"decline\" \
             class=\"secondary\" formnovalidate>Cancel</button>\
             </div></form>",
            error = error_block(self.error),
            code = escape(self.user_code),
            username = escape(self.username),
        );
        document("Enter code", &body)
    }
}

/// A page with a heading and one paragraph.
pub fn message(title: &str, text: &str) -> String {
    document(
        title,
        &format!(
            "<h1>{}</h1><p id=\"message\">{}</p>",
            escape(title),
            escape(text)
        ),
    )
}

/// Entra's form_post relay: hidden fields POSTed to `action` as soon as the page loads.
pub fn form_post(action: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Working...</title></head>\
         <body><form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}\
         <noscript><p>Script is disabled. Click Submit to continue.</p>\
         <input type=\"submit\" value=\"Submit\"></noscript></form>\
         <script>document.forms[0].submit();</script></body></html>\n",
        escape(action)
    )
}

/// `?code=N` of the `error_uri` Entra puts in error bodies.
#[derive(Debug, Deserialize)]
pub struct ErrorLookup {
    code: Option<String>,
}

/// `GET /error?code=N`: the page `error_uri` points at.
pub async fn error_lookup(Query(q): Query<ErrorLookup>) -> Response {
    let code = q.code.unwrap_or_default();
    html(message(
        &format!("AADSTS{code}"),
        "This is fake-entra, a test authority. Its error codes follow Microsoft Entra ID's; see \
         tests/README.md in the tokentray repository for when each one is returned.",
    ))
}

//! `tokentray clients`: the programs allowed or denied tokens under `require_approval`.

use super::{ClientsCommand, Out, open_tokens};
use crate::Result;
use crate::approval::{self, Client};
use crate::cache::Verdict;

/// Lists the kept decisions, or allows, denies or forgets one. A running instance sees the
/// change within a second (it follows the cache file).
pub(super) fn clients(action: Option<ClientsCommand>, out: &mut Out<'_>) -> Result<()> {
    let tokens = open_tokens()?;
    let decided = match action {
        None => {
            return list(
                &approval::clients(&tokens)?,
                tokens.config().require_approval,
                out,
            );
        }
        Some(ClientsCommand::Allow { program }) => {
            approval::decide(&tokens, &program, Verdict::Allow)?
        }
        Some(ClientsCommand::Deny { program }) => {
            approval::decide(&tokens, &program, Verdict::Deny)?
        }
        Some(ClientsCommand::Revoke { program }) => {
            let path = approval::revoke(&tokens, &program)?;
            if out.json {
                return out.json(&serde_json::json!({ "revoked": path }));
            }
            return out.line(format_args!(
                "Forgot the decision about {path}; it is asked about on its next request."
            ));
        }
    };
    if out.json {
        return out.json(&decided);
    }
    out.line(format_args!(
        "{} {} (sha256 {}).",
        match decided.rule.verdict {
            Verdict::Allow => "Allowed",
            Verdict::Deny => "Denied",
        },
        decided.path,
        short(&decided.rule.sha256)
    ))?;
    if !tokens.config().require_approval {
        out.tell(off_hint(&tokens));
    }
    Ok(())
}

fn list(clients: &[Client], required: bool, out: &mut Out<'_>) -> Result<()> {
    if out.json {
        return out.json(&serde_json::json!({
            "require_approval": required,
            "clients": clients,
        }));
    }
    if !out.tsv {
        out.line(if required {
            "Approval of new programs is on: a program not listed asks in the tokentray window first."
        } else {
            "Approval of new programs is off (require_approval = true in config.toml turns it on)."
        })?;
        if clients.is_empty() {
            return out.line("No program is allowed or denied yet.");
        }
    }
    let rows: Vec<[String; 5]> = clients
        .iter()
        .map(|c| {
            let verdict = match c.rule.verdict {
                Verdict::Allow => "allow",
                Verdict::Deny => "deny",
            };
            let now = match approval::current_sha256(&c.path) {
                Some(now) if now == c.rule.sha256 => "as decided",
                Some(_) => "changed since: asked again",
                None => "gone",
            };
            [
                verdict.to_string(),
                c.path.clone(),
                short(&c.rule.sha256).to_string(),
                crate::clock::local_time(c.rule.decided, "%Y-%m-%d %H:%M"),
                now.to_string(),
            ]
        })
        .collect();
    out.table(["VERDICT", "PROGRAM", "SHA256", "DECIDED", "NOW"], &rows)
}

fn off_hint(tokens: &crate::tokens::Tokens) -> String {
    format!(
        "note: approval of new programs is off, so every program of yours gets tokens; turn it \
         on with `require_approval = true` in {}",
        tokens.config().path.display()
    )
}

/// The first 12 hex digits of a SHA-256.
fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

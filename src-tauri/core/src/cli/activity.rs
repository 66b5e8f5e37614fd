//! `tokentray activity`: the tokens the running app or daemon served lately.

use super::Out;
use crate::Result;
use crate::clock::local_time;
use crate::instance::{self, Endpoint};
use crate::paths::Paths;
use crate::tokens::Served;

/// Lists what the running instance served lately, newest first (at most
/// [`crate::tokens::ACTIVITY_KEPT`] lines), only the lines `filter` matches
/// ([`Served::matches`]). With no instance running there is no activity: it says so and how
/// to start one, and lists nothing.
pub(super) async fn activity(filter: Option<&str>, out: &mut Out<'_>) -> Result<()> {
    let Some(endpoint) = Endpoint::running(&Paths::from_env()?) else {
        out.tell(
            "Nothing serves tokens now, so there is no activity: the app (`tokentray`) or \
             `tokentray daemon` lists what it serves from its start.",
        );
        return if out.json { out.line("[]") } else { Ok(()) };
    };
    let served: Vec<Served> = instance::activity(&endpoint)
        .await?
        .into_iter()
        .filter(|s| filter.is_none_or(|f| s.matches(f)))
        .collect();
    if out.json {
        return out.json(&served);
    }
    if served.is_empty() && !out.tsv {
        return out.line(match filter {
            Some(f) => format!("Nothing served matches {f:?}."),
            None => format!("Nothing served yet by the instance at {}.", endpoint.url),
        });
    }
    let rows: Vec<[String; 6]> = served
        .iter()
        .map(|s| {
            [
                local_time(s.at, "%Y-%m-%d %H:%M:%S"),
                s.client.clone(),
                s.account.clone(),
                s.scopes.clone(),
                s.route.clone(),
                s.count.to_string(),
            ]
        })
        .collect();
    out.table(
        ["TIME", "PROGRAM", "ACCOUNT", "SCOPES", "ROUTE", "COUNT"],
        &rows,
    )
}

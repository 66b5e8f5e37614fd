//! The tray's icon state and menu, as data: the shell builds the real menu from it and maps
//! clicks back through [`TrayAction`].

use crate::tokens::{AccountState, Health};

/// The tray's icon and menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tray {
    /// Which icon.
    pub state: TrayState,
    /// Hover text.
    pub tooltip: String,
    /// The accounts, the default first.
    pub accounts: Vec<TrayAccount>,
}

/// The tray icon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    /// No account.
    NoAccount,
    /// Signed in, nothing needs the user.
    SignedIn,
    /// An account needs sign-in.
    Attention,
    /// Entra ID cannot be reached for an account; its cached tokens are still served.
    Retrying,
}

/// An account in the tray menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayAccount {
    /// Home account id.
    pub id: String,
    /// Menu label.
    pub label: String,
    /// Check mark.
    pub is_default: bool,
}

/// What a tray menu item does. Menu item ids are [`TrayAction::id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayAction {
    /// Make this account (home account id) the default.
    Switch(String),
    /// Open the window and start a browser sign-in.
    SignInBrowser,
    /// Open the window and start a device code sign-in.
    SignInDevice,
    /// Open the window and confirm signing out this account.
    SignOut(String),
    /// Show the window.
    Open,
    /// Put the environment lines on the clipboard.
    CopyEnv,
    /// Stop the endpoint and exit.
    Quit,
}

impl TrayAction {
    /// The menu item id.
    pub fn id(&self) -> String {
        match self {
            Self::Switch(a) => format!("switch:{a}"),
            Self::SignInBrowser => "sign-in-browser".into(),
            Self::SignInDevice => "sign-in-device".into(),
            Self::SignOut(a) => format!("sign-out:{a}"),
            Self::Open => "open".into(),
            Self::CopyEnv => "copy-env".into(),
            Self::Quit => "quit".into(),
        }
    }

    /// The action of a menu item id.
    pub fn from_id(id: &str) -> Option<Self> {
        if let Some(a) = id.strip_prefix("switch:") {
            return Some(Self::Switch(a.into()));
        }
        if let Some(a) = id.strip_prefix("sign-out:") {
            return Some(Self::SignOut(a.into()));
        }
        Some(match id {
            "sign-in-browser" => Self::SignInBrowser,
            "sign-in-device" => Self::SignInDevice,
            "open" => Self::Open,
            "copy-env" => Self::CopyEnv,
            "quit" => Self::Quit,
            _ => return None,
        })
    }
}

impl Tray {
    /// The tray for `accounts`: attention when one needs sign-in, retrying when Entra ID
    /// cannot be reached for one (its tokens are still served), else signed in.
    pub fn for_accounts(accounts: &[AccountState]) -> Self {
        let first = |wanted: fn(&Health) -> bool| {
            accounts
                .iter()
                .find(|a| wanted(&a.health))
                .map(|a| (a.account.username.as_str(), a.health.line()))
        };
        let needs = first(|h| matches!(h, Health::NeedsSignIn { .. }));
        let retrying = first(|h| matches!(h, Health::Retrying { .. }));
        let default = accounts.iter().find(|a| a.account.is_default);
        let (state, tooltip) = if accounts.is_empty() {
            (TrayState::NoAccount, "tokentray: not signed in".into())
        } else if let Some((who, _)) = needs {
            (
                TrayState::Attention,
                format!("tokentray: {who} needs sign-in"),
            )
        } else if let Some((who, line)) = retrying {
            (TrayState::Retrying, format!("tokentray: {who}: {line}"))
        } else if let Some(d) = default {
            (
                TrayState::SignedIn,
                format!("tokentray: {}", d.account.username),
            )
        } else {
            (TrayState::SignedIn, "tokentray: signed in".into())
        };
        let mut listed: Vec<TrayAccount> = accounts
            .iter()
            .map(|a| TrayAccount {
                id: a.account.home_account_id.clone(),
                label: match &a.health {
                    Health::NeedsSignIn { .. } => format!("{} (needs sign-in)", a.account.username),
                    Health::Retrying { .. } => format!("{} (retrying)", a.account.username),
                    _ => a.account.username.clone(),
                },
                is_default: a.account.is_default,
            })
            .collect();
        listed.sort_by_key(|a| !a.is_default);
        Self {
            state,
            tooltip,
            accounts: listed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::AccountInfo;

    fn account(user: &str, default: bool, needs: Option<&str>) -> AccountState {
        AccountState::at_rest(AccountInfo {
            home_account_id: format!("{user}.tid"),
            environment: "login.microsoftonline.com".into(),
            username: user.into(),
            name: None,
            local_account_id: None,
            home_tenant: Some("tid".into()),
            realms: vec![],
            is_default: default,
            needs_sign_in: needs.map(str::to_string),
        })
    }

    #[test]
    fn tray_state_follows_accounts() {
        let none = Tray::for_accounts(&[]);
        assert_eq!(none.state, TrayState::NoAccount);
        assert!(none.accounts.is_empty());

        let two = Tray::for_accounts(&[account("a@x", false, None), account("b@x", true, None)]);
        assert_eq!(two.state, TrayState::SignedIn);
        assert_eq!(two.tooltip, "tokentray: b@x");
        assert_eq!(two.accounts[0].id, "b@x.tid", "the default comes first");
        assert!(two.accounts[0].is_default && !two.accounts[1].is_default);

        let attention = Tray::for_accounts(&[account("a@x", true, Some("expired"))]);
        assert_eq!(attention.state, TrayState::Attention);
        assert_eq!(attention.accounts[0].label, "a@x (needs sign-in)");

        let both = Tray::for_accounts(&[retrying("a@x"), account("b@x", false, Some("revoked"))]);
        assert_eq!(
            both.state,
            TrayState::Attention,
            "sign-in needs the user first"
        );
        assert_eq!(both.accounts[0].label, "a@x (retrying)");
        let offline = Tray::for_accounts(&[retrying("a@x")]);
        assert_eq!(offline.state, TrayState::Retrying);
        assert!(
            offline
                .tooltip
                .starts_with("tokentray: a@x: can't reach Entra ID, retrying at"),
            "{}",
            offline.tooltip
        );
    }

    fn retrying(user: &str) -> AccountState {
        let mut a = account(user, true, None);
        a.health = Health::Retrying {
            at: 0,
            attempt: 2,
            reason: "503".into(),
        };
        a
    }

    #[test]
    fn tray_action_ids_round_trip() {
        for action in [
            TrayAction::Switch("oid.tid".into()),
            TrayAction::SignInBrowser,
            TrayAction::SignInDevice,
            TrayAction::SignOut("oid.tid".into()),
            TrayAction::Open,
            TrayAction::CopyEnv,
            TrayAction::Quit,
        ] {
            assert_eq!(TrayAction::from_id(&action.id()), Some(action));
        }
        assert_eq!(TrayAction::from_id("nonsense"), None);
    }
}

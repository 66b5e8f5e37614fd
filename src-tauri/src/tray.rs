//! The tray icon and its menu, built from [`tokentray_core::desktop::tray`] and rebuilt when the
//! accounts change. Items that need a dialog (sign in, sign out) show the window and ask it to
//! start the flow through a `tokentray://tray` event.

use std::sync::Arc;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter as _, Manager as _, Runtime};
use tokentray_core::desktop::{Desktop, Tray, TrayAction, TrayState};

const TRAY_ID: &str = "tokentray";

/// Asks the window to start a flow.
#[derive(Debug, Clone, serde::Serialize)]
struct WindowRequest<'a> {
    action: &'a str,
    account: Option<&'a str>,
}

fn icon(state: TrayState) -> tauri::Result<Image<'static>> {
    let bytes: &'static [u8] = match state {
        TrayState::NoAccount => include_bytes!("../../icons/tray-no-account.png"),
        TrayState::SignedIn => include_bytes!("../../icons/tray-signed-in.png"),
        TrayState::Attention => include_bytes!("../../icons/tray-attention.png"),
        TrayState::Retrying => include_bytes!("../../icons/tray-retrying.png"),
    };
    Image::from_bytes(bytes)
}

fn model(desktop: &Desktop) -> Tray {
    match desktop.tokens().account_states() {
        Ok(accounts) => Tray::for_accounts(&accounts),
        Err(e) => {
            tracing::warn!("tray: cannot read the accounts: {e}");
            Tray::for_accounts(&[])
        }
    }
}

/// Creates the tray icon.
///
/// # Errors
/// If the icon or menu cannot be created.
pub fn create<R: Runtime>(app: &AppHandle<R>, desktop: &Desktop) -> tauri::Result<()> {
    let model = model(desktop);
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(model.state)?)
        .tooltip(&model.tooltip)
        .menu(&menu(app, &model)?)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
        .build(app)?;
    Ok(())
}

/// Brings the icon and menu up to date with the accounts.
pub fn update<R: Runtime>(app: &AppHandle<R>, desktop: &Desktop) {
    let Some(icon_handle) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let model = model(desktop);
    let result = menu(app, &model).and_then(|m| {
        icon_handle.set_menu(Some(m))?;
        icon_handle.set_icon(Some(icon(model.state)?))?;
        icon_handle.set_tooltip(Some(&model.tooltip))
    });
    if let Err(e) = result {
        tracing::warn!("tray: cannot update: {e}");
    }
}

fn menu<R: Runtime>(app: &AppHandle<R>, model: &Tray) -> tauri::Result<Menu<R>> {
    let mut items: Vec<Box<dyn IsMenuItem<R>>> = Vec::new();
    if model.accounts.is_empty() {
        items.push(Box::new(MenuItem::with_id(
            app,
            "none",
            "Not signed in",
            false,
            None::<&str>,
        )?));
    }
    for account in &model.accounts {
        items.push(Box::new(CheckMenuItem::with_id(
            app,
            TrayAction::Switch(account.id.clone()).id(),
            &account.label,
            true,
            account.is_default,
            None::<&str>,
        )?));
    }
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    let plain = |action: TrayAction, text: &str| -> tauri::Result<Box<dyn IsMenuItem<R>>> {
        Ok(Box::new(MenuItem::with_id(
            app,
            action.id(),
            text,
            true,
            None::<&str>,
        )?))
    };
    items.push(plain(TrayAction::SignInBrowser, "Sign in with browser…")?);
    items.push(plain(
        TrayAction::SignInDevice,
        "Sign in with device code…",
    )?);
    match model.accounts.as_slice() {
        [] => {}
        [only] => items.push(plain(
            TrayAction::SignOut(only.id.clone()),
            &format!("Sign out {}…", only.label),
        )?),
        many => {
            let entries = many
                .iter()
                .map(|a| plain(TrayAction::SignOut(a.id.clone()), &format!("{}…", a.label)))
                .collect::<tauri::Result<Vec<_>>>()?;
            let refs: Vec<&dyn IsMenuItem<R>> = entries.iter().map(AsRef::as_ref).collect();
            items.push(Box::new(Submenu::with_items(app, "Sign out", true, &refs)?));
        }
    }
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    items.push(plain(TrayAction::Open, "Open account manager")?);
    items.push(plain(TrayAction::CopyEnv, "Copy environment for tools")?);
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    items.push(plain(TrayAction::Quit, "Quit tokentray")?);
    let refs: Vec<&dyn IsMenuItem<R>> = items.iter().map(AsRef::as_ref).collect();
    Menu::with_items(app, &refs)
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(action) = TrayAction::from_id(id) else {
        return;
    };
    let Some(desktop) = app.try_state::<Arc<Desktop>>() else {
        return;
    };
    let ask = |action: &str, account: Option<&str>| {
        crate::show_window(app);
        let _ = app.emit("tokentray://tray", WindowRequest { action, account });
    };
    match action {
        TrayAction::Switch(account) => {
            if let Err(e) = desktop.switch(&account) {
                crate::notify("Could not switch accounts".into(), e.to_string());
            }
            // Redraw even on failure: GTK toggled the clicked check item by itself.
            update(app, &desktop);
        }
        TrayAction::SignInBrowser => ask("sign-in-browser", None),
        TrayAction::SignInDevice => ask("sign-in-device", None),
        TrayAction::SignOut(account) => ask("sign-out", Some(&account)),
        TrayAction::Open => ask("show", None),
        TrayAction::CopyEnv => {
            let copied = desktop
                .env(tokentray_core::desktop::Shell::native())
                .map_err(crate::commands::UiError::from)
                .and_then(|lines| crate::copy(app, &lines));
            match copied {
                Ok(()) => crate::notify(
                    "Environment copied".into(),
                    "Paste it into your shell or your IDE's environment settings.".into(),
                ),
                Err(e) => crate::notify("Could not copy the environment".into(), e.message),
            }
        }
        TrayAction::Quit => app.exit(0),
    }
}

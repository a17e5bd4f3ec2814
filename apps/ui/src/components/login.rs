//! The login screen: a username and a server URL, "connecting…" while joining, and the
//! client's own words when it fails (name taken, server unreachable). Network settings
//! (STUN/TURN servers, relay only) fold away: a LAN needs none.

use dioxus::prelude::*;
use peerchat_core::Client;

use crate::Joined;
use crate::model::LoginForm;
use crate::platform;

#[component]
pub fn LoginScreen(on_joined: EventHandler<Joined>) -> Element {
    let mut form = use_signal(|| LoginForm {
        server_url: platform::default_server_url(),
        ..LoginForm::default()
    });
    let mut busy = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);

    let submit = move |event: FormEvent| {
        event.prevent_default();
        if busy() {
            return;
        }
        let mut options = match form.read().validated() {
            Ok(options) => options,
            Err(why) => {
                error.set(Some(why));
                return;
            }
        };
        options.storage = platform::storage(&options.username);
        busy.set(true);
        error.set(None);
        spawn(async move {
            let username = options.username.clone();
            match Client::connect_with(options).await {
                Ok((client, events)) => on_joined.call(Joined {
                    client,
                    events,
                    username,
                }),
                Err(failure) => error.set(Some(failure.to_string())),
            }
            busy.set(false);
        });
    };

    rsx! {
        main { class: "login",
            form { class: "login-card", onsubmit: submit, aria_label: "Sign in",
                h1 { "peerchat" }
                p { class: "tagline", "Chat directly, peer to peer." }
                label { r#for: "username", "Username" }
                input {
                    id: "username",
                    name: "username",
                    autocomplete: "username",
                    autofocus: true,
                    placeholder: "alice",
                    value: "{form.read().username}",
                    oninput: move |e| form.write().username = e.value(),
                }
                label { r#for: "server", "Signaling server" }
                input {
                    id: "server",
                    name: "server",
                    placeholder: "wss://example.org/mqtt",
                    value: "{form.read().server_url}",
                    oninput: move |e| form.write().server_url = e.value(),
                }
                details { class: "network-settings",
                    summary { "Network settings" }
                    label { r#for: "ice-urls", "STUN / TURN servers" }
                    input {
                        id: "ice-urls",
                        name: "ice-urls",
                        placeholder: "turn:relay.example.org:3478",
                        value: "{form.read().ice_urls}",
                        oninput: move |e| form.write().ice_urls = e.value(),
                    }
                    label { r#for: "ice-username", "TURN username" }
                    input {
                        id: "ice-username",
                        name: "ice-username",
                        autocomplete: "off",
                        value: "{form.read().ice_username}",
                        oninput: move |e| form.write().ice_username = e.value(),
                    }
                    label { r#for: "ice-credential", "TURN password" }
                    input {
                        id: "ice-credential",
                        name: "ice-credential",
                        r#type: "password",
                        autocomplete: "off",
                        value: "{form.read().ice_credential}",
                        oninput: move |e| form.write().ice_credential = e.value(),
                    }
                    label { class: "checkbox",
                        input {
                            r#type: "checkbox",
                            checked: form.read().relay_only,
                            onchange: move |e| form.write().relay_only = e.checked(),
                        }
                        "Relay every chat through TURN (hides my address from peers)"
                    }
                }
                if let Some(why) = error() {
                    p { class: "error", role: "alert", "{why}" }
                }
                button { r#type: "submit", disabled: busy(),
                    if busy() { "Connecting…" } else { "Join" }
                }
            }
        }
    }
}

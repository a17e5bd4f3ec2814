//! The login screen: a username and a server URL, "connecting…" while joining, and the
//! client's own words when it fails (name taken, server unreachable).

use dioxus::prelude::*;
use peerchat_core::{Client, ClientOptions};

use crate::Joined;
use crate::model::LoginForm;
use crate::platform;

#[component]
pub fn LoginScreen(on_joined: EventHandler<Joined>) -> Element {
    let mut form = use_signal(|| LoginForm {
        username: String::new(),
        server_url: platform::default_server_url(),
    });
    let mut busy = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);

    let submit = move |event: FormEvent| {
        event.prevent_default();
        if busy() {
            return;
        }
        let (username, server_url) = match form.read().validated() {
            Ok(valid) => valid,
            Err(why) => {
                error.set(Some(why));
                return;
            }
        };
        busy.set(true);
        error.set(None);
        spawn(async move {
            let options = ClientOptions::new(server_url, username.as_str());
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

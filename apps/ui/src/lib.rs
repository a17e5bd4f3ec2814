//! peerchat's user interface: one Dioxus component tree for the web, the desktop and
//! Android. The launchers in `platforms/` pick the renderer and the core's backend.
//!
//! State lives in plain Rust types ([`model`]), changed by client events and user actions;
//! the components in [`components`] only draw it and forward clicks and keys.

pub mod components;
pub mod model;
mod platform;

use dioxus::prelude::*;
use futures::StreamExt;
use peerchat_core::{Client, Events};

use components::{ChatScreen, LoginScreen};
use model::ChatState;

/// Colours, layout and themes, inlined so every platform gets them without a bundler.
const STYLE: &str = include_str!("../assets/style.css");

/// A client that has joined the server, with its event stream.
pub struct Joined {
    pub client: Client,
    pub events: Events,
    pub username: String,
}

/// The whole app: the login screen, then the chat screen.
#[component]
pub fn App() -> Element {
    let mut client = use_signal(|| None::<Client>);
    let mut chat = use_signal(|| None::<ChatState>);
    // The task feeding the signed-in client's events into `chat`: it ends with the session,
    // so nothing from it reaches the next one.
    let mut event_feed = use_signal(|| None::<dioxus::core::Task>);
    use_context_provider(|| client);

    let on_joined = move |joined: Joined| {
        let Joined {
            client: joined_client,
            mut events,
            username,
        } = joined;
        chat.set(Some(ChatState::new(&username)));
        client.set(Some(joined_client));
        let feed = spawn(async move {
            while let Some(event) = events.next().await {
                if let Some(state) = chat.write().as_mut() {
                    state.apply(event, platform::now());
                }
            }
        });
        event_feed.set(Some(feed));
    };
    let on_leave = move |_| {
        if let Some(feed) = event_feed.take() {
            feed.cancel();
        }
        let leaving = client.take();
        chat.set(None);
        if let Some(leaving) = leaving {
            spawn(async move { leaving.disconnect().await });
        }
    };

    rsx! {
        style { {STYLE} }
        if chat.read().is_some() {
            ChatScreen { chat, on_leave }
        } else {
            LoginScreen { on_joined }
        }
    }
}

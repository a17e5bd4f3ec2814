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

/// What the signed-in session's task takes in.
enum Input {
    Event(peerchat_core::ClientEvent),
    /// The page went out of view (`true`) or came back.
    Hidden(bool),
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
            events,
            username,
        } = joined;
        chat.set(Some(ChatState::new(&username)));
        client.set(Some(joined_client));
        let feed = spawn(async move {
            // Client events, and whether the page is in view (a hidden page's open chat
            // alerts too); each alert raised becomes a notification.
            let mut inputs = futures::stream::select(
                events.map(Input::Event),
                platform::visibility().map(Input::Hidden),
            );
            while let Some(input) = inputs.next().await {
                let alerts = match chat.write().as_mut() {
                    Some(state) => {
                        match input {
                            Input::Event(event) => state.apply(event, platform::now()),
                            Input::Hidden(hidden) => state.set_hidden(hidden),
                        }
                        state.take_alerts()
                    }
                    None => Vec::new(),
                };
                alerts.iter().for_each(platform::notify);
            }
        });
        event_feed.set(Some(feed));
    };
    // The unread count in the tab's title, kept as the state changes.
    use_effect(move || {
        let title =
            (chat.read().as_ref()).map_or_else(|| "peerchat".to_owned(), ChatState::window_title);
        platform::set_window_title(&title);
    });
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

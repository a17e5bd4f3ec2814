//! Errors that belong to no conversation, each dismissable.

use dioxus::prelude::*;

use crate::model::ChatState;

#[component]
pub fn Notices(chat: Signal<Option<ChatState>>) -> Element {
    let notices = chat
        .read()
        .as_ref()
        .map(|s| s.notices.clone())
        .unwrap_or_default();
    rsx! {
        if !notices.is_empty() {
            ul { class: "notices", aria_live: "polite",
                for notice in notices {
                    li { key: "{notice.id}", class: "notice",
                        span { "{notice.text}" }
                        button {
                            class: "icon",
                            aria_label: "Dismiss",
                            onclick: move |_| {
                                if let Some(state) = chat.write().as_mut() {
                                    state.dismiss(notice.id);
                                }
                            },
                            "×"
                        }
                    }
                }
            }
        }
    }
}

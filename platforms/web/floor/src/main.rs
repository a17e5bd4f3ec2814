//! A form that adds lines to a list: Dioxus's renderer, events, signals and diffing, and
//! nothing of peerchat.

use dioxus::prelude::*;

fn main() {
    dioxus::launch(App);
}

#[component]
fn App() -> Element {
    let mut draft = use_signal(String::new);
    let mut lines = use_signal(Vec::<String>::new);
    rsx! {
        form {
            onsubmit: move |event: FormEvent| {
                event.prevent_default();
                lines.write().push(draft());
                draft.set(String::new());
            },
            input { value: "{draft}", oninput: move |event| draft.set(event.value()) }
            button { "Send" }
        }
        for line in lines.iter() {
            p { "{line}" }
        }
    }
}

//! What the UI asks of the platform it runs on: the time of day, the default server, where
//! history is kept, files pasted from the clipboard, and getting the user's attention
//! (notifications, the window title, whether the page is in view).

use futures::Stream;
use peerchat_core::Storage;

use crate::model::{Alert, MessageTime};

/// Whether the platform may show notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyPermission {
    /// The user has not been asked yet: the app offers a button to ask.
    Ask,
    Granted,
    /// Only a browser's user can deny them.
    #[cfg_attr(not(target_arch = "wasm32"), expect(dead_code))]
    Denied,
    Unsupported,
}

/// A file the user picked, dropped or pasted, read into memory.
pub struct LocalFile {
    pub name: String,
    /// The media type the platform reported, if any.
    pub mime: Option<String>,
    pub data: Vec<u8>,
}

cfg_if::cfg_if! {
    if #[cfg(target_arch = "wasm32")] {
        /// The local time of day, from the browser's clock and time zone.
        pub fn now() -> MessageTime {
            time_at(js_sys::Date::now() as u64)
        }

        /// The local time of day at `at_ms` (milliseconds since the Unix epoch).
        pub fn time_at(at_ms: u64) -> MessageTime {
            let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64));
            MessageTime {
                hour: date.get_hours() as u8,
                minute: date.get_minutes() as u8,
            }
        }

        /// History and unsent messages live in the origin's IndexedDB.
        pub fn storage(_username: &str) -> Storage {
            Storage::Browser
        }

        /// The `/mqtt` endpoint of the host that served the page, or its `?server=`.
        pub fn default_server_url() -> String {
            let Some(location) = web_sys::window().map(|w| w.location()) else {
                return String::new();
            };
            let protocol = location.protocol().unwrap_or_default();
            let host = location.host().unwrap_or_default();
            let server = location
                .search()
                .ok()
                .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
                .and_then(|params| params.get("server"));
            crate::model::default_server_url(&protocol, &host, server.as_deref())
        }

        /// The files on the clipboard of a paste event. They must be taken while the event
        /// is dispatched (the browser empties its clipboard data after); reading them may
        /// come later.
        pub struct PastedFiles(Vec<web_sys::File>);

        impl PastedFiles {
            pub fn take(event: &dioxus::prelude::ClipboardData) -> Self {
                use wasm_bindgen::JsCast;
                let files = event
                    .downcast::<web_sys::Event>()
                    .and_then(|e| e.dyn_ref::<web_sys::ClipboardEvent>())
                    .and_then(|e| e.clipboard_data())
                    .and_then(|data| data.files());
                let files = files
                    .map(|list| (0..list.length()).filter_map(|i| list.item(i)).collect())
                    .unwrap_or_default();
                Self(files)
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            pub async fn read(self) -> Vec<LocalFile> {
                let mut read = Vec::new();
                for file in self.0 {
                    let Ok(buffer) = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await
                    else {
                        continue;
                    };
                    read.push(LocalFile {
                        name: file.name(),
                        mime: Some(file.type_()),
                        data: js_sys::Uint8Array::new(&buffer).to_vec(),
                    });
                }
                read
            }
        }

        fn notifications_supported() -> bool {
            web_sys::window().is_some_and(|window| {
                js_sys::Reflect::has(&window, &wasm_bindgen::JsValue::from_str("Notification"))
                    .unwrap_or(false)
            })
        }

        /// What the browser allows (without `Notification`, as in an iPhone's Safari outside
        /// an installed app: unsupported).
        pub fn notify_permission() -> NotifyPermission {
            if !notifications_supported() {
                return NotifyPermission::Unsupported;
            }
            match web_sys::Notification::permission() {
                web_sys::NotificationPermission::Granted => NotifyPermission::Granted,
                web_sys::NotificationPermission::Denied => NotifyPermission::Denied,
                _ => NotifyPermission::Ask,
            }
        }

        /// Asks the user (call it from a click: browsers ignore asking on load).
        pub async fn ask_notify_permission() -> NotifyPermission {
            if notifications_supported()
                && let Ok(asked) = web_sys::Notification::request_permission()
            {
                wasm_bindgen_futures::JsFuture::from(asked).await.ok();
            }
            notify_permission()
        }

        /// Raises a notification for `alert`, if allowed. One per conversation at a time: a
        /// newer message in the same chat or room replaces it.
        pub fn notify(alert: &Alert) {
            if notify_permission() != NotifyPermission::Granted {
                return;
            }
            let options = web_sys::NotificationOptions::new();
            options.set_body(&alert.body);
            options.set_tag(&format!("peerchat-{}", alert.chat));
            web_sys::Notification::new_with_options(&alert.title, &options).ok();
        }

        pub fn set_window_title(title: &str) {
            if let Some(document) = web_sys::window().and_then(|w| w.document()) {
                document.set_title(title);
            }
        }

        /// Whether the page is hidden, now and at every change, until the stream is dropped.
        pub fn visibility() -> impl Stream<Item = bool> {
            use wasm_bindgen::JsCast;
            use wasm_bindgen::closure::Closure;

            /// The page's `visibilitychange` listener, removed with the stream.
            struct Watch {
                changes: futures::channel::mpsc::UnboundedReceiver<bool>,
                document: Option<web_sys::Document>,
                listener: Closure<dyn FnMut()>,
            }

            impl Drop for Watch {
                fn drop(&mut self) {
                    if let Some(document) = &self.document {
                        let listener = self.listener.as_ref().unchecked_ref();
                        document
                            .remove_event_listener_with_callback("visibilitychange", listener)
                            .ok();
                    }
                }
            }

            impl Stream for Watch {
                type Item = bool;

                fn poll_next(
                    mut self: std::pin::Pin<&mut Self>,
                    cx: &mut std::task::Context<'_>,
                ) -> std::task::Poll<Option<bool>> {
                    std::pin::Pin::new(&mut self.changes).poll_next(cx)
                }
            }

            let document = web_sys::window().and_then(|w| w.document());
            let (sender, changes) = futures::channel::mpsc::unbounded();
            let seen = document.clone();
            let listener = Closure::<dyn FnMut()>::new(move || {
                if let Some(document) = &seen {
                    sender.unbounded_send(document.hidden()).ok();
                }
            });
            if let Some(document) = &document {
                let callback = listener.as_ref().unchecked_ref();
                document
                    .add_event_listener_with_callback("visibilitychange", callback)
                    .ok();
            }
            let hidden_now = document.as_ref().is_some_and(web_sys::Document::hidden);
            let watch = Watch {
                changes,
                document,
                listener,
            };
            futures::StreamExt::chain(futures::stream::iter([hidden_now]), watch)
        }
    } else {
        /// The local time of day, from the system clock and time zone.
        pub fn now() -> MessageTime {
            let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            time_at(since_epoch.map_or(0, |d| d.as_millis() as u64))
        }

        /// The local time of day at `at_ms` (milliseconds since the Unix epoch).
        pub fn time_at(at_ms: u64) -> MessageTime {
            local_time_of_day(at_ms / 1000).unwrap_or_default()
        }

        /// History and unsent messages live in `<data dir>/peerchat/<username>.db`: the
        /// data dir is `PEERCHAT_DATA_DIR`, else `$XDG_DATA_HOME`, else
        /// `~/.local/share`. With none of them or no way to create the directory, nothing
        /// is kept (nor on Android yet, whose core has no SQLite store).
        pub fn storage(username: &str) -> Storage {
            let env = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
            let data = env("PEERCHAT_DATA_DIR")
                .or_else(|| env("XDG_DATA_HOME").map(|d| d.join("peerchat")))
                .or_else(|| env("HOME").map(|h| h.join(".local/share/peerchat")));
            match data {
                Some(dir) if std::fs::create_dir_all(&dir).is_ok() => {
                    Storage::File(dir.join(format!("{username}.db")))
                }
                _ => Storage::Memory,
            }
        }

        /// Desktop and Android webviews hand pasted files to no one: pasting pastes text.
        pub struct PastedFiles;

        impl PastedFiles {
            pub fn take(_event: &dioxus::prelude::ClipboardData) -> Self {
                Self
            }

            pub fn is_empty(&self) -> bool {
                true
            }

            pub async fn read(self) -> Vec<LocalFile> {
                Vec::new()
            }
        }

        /// `PEERCHAT_SERVER` if set, else a peerchat-server on this machine.
        pub fn default_server_url() -> String {
            std::env::var("PEERCHAT_SERVER").unwrap_or_else(|_| "mqtt://localhost:1883".to_owned())
        }

        fn local_time_of_day(seconds: u64) -> Option<MessageTime> {
            let seconds = libc::time_t::try_from(seconds).ok()?;
            // SAFETY: `localtime_r` reads `seconds` and fills the `tm` we own; it keeps no
            // pointer to either.
            let tm = unsafe {
                let mut tm: libc::tm = std::mem::zeroed();
                if libc::localtime_r(&seconds, &mut tm).is_null() {
                    return None;
                }
                tm
            };
            Some(MessageTime {
                hour: u8::try_from(tm.tm_hour).ok()?,
                minute: u8::try_from(tm.tm_min).ok()?,
            })
        }

        /// Native notifications need no asking on the desktop; Android has none yet.
        pub fn notify_permission() -> NotifyPermission {
            if cfg!(target_os = "android") {
                NotifyPermission::Unsupported
            } else {
                NotifyPermission::Granted
            }
        }

        pub async fn ask_notify_permission() -> NotifyPermission {
            notify_permission()
        }

        /// Raises a desktop notification for `alert` on a thread of its own (the system's
        /// notification service may be slow, or absent: then nothing shows).
        pub fn notify(alert: &Alert) {
            #[cfg(not(target_os = "android"))]
            {
                let alert = alert.clone();
                std::thread::spawn(move || {
                    notify_rust::Notification::new()
                        .appname("peerchat")
                        .summary(&alert.title)
                        .body(&alert.body)
                        .show()
                        .ok();
                });
            }
            #[cfg(target_os = "android")]
            let _ = alert;
        }

        /// The desktop window keeps its title (the unread counts show in the peer list).
        pub fn set_window_title(_title: &str) {}

        /// The desktop window counts as always in view.
        pub fn visibility() -> impl Stream<Item = bool> {
            futures::stream::pending()
        }
    }
}

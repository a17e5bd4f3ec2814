//! What the UI asks of the platform it runs on: the time of day and the default server.

use crate::model::MessageTime;

cfg_if::cfg_if! {
    if #[cfg(target_arch = "wasm32")] {
        /// The local time of day, from the browser's clock and time zone.
        pub fn now() -> MessageTime {
            let date = js_sys::Date::new_0();
            MessageTime {
                hour: date.get_hours() as u8,
                minute: date.get_minutes() as u8,
            }
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
    } else {
        /// The local time of day, from the system clock and time zone.
        pub fn now() -> MessageTime {
            local_time_of_day().unwrap_or_default()
        }

        /// `PEERCHAT_SERVER` if set, else a peerchat-server on this machine.
        pub fn default_server_url() -> String {
            std::env::var("PEERCHAT_SERVER").unwrap_or_else(|_| "mqtt://localhost:1883".to_owned())
        }

        fn local_time_of_day() -> Option<MessageTime> {
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
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
    }
}

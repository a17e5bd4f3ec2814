//! peerchat's real web app (platforms/web, built by platforms/web/build.sh) in headless
//! Chromium, driven the way a person uses it: keystrokes into its fields, clicks on its
//! buttons, and reading what the screen shows.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::target_path;
use crate::wait_for;
use crate::webdriver::Browser;

/// The Enter key, as WebDriver types it.
pub const ENTER: &str = "\u{E007}";

/// The built web app: `<target>/web-app`. Pass it to `PeerchatServer::serving`.
pub fn app_dir() -> PathBuf {
    let dir = target_path("web-app");
    assert!(
        dir.join("index.html").exists() && dir.join("peerchat-web_bg.wasm").exists(),
        "the web app is missing from {}: build it with platforms/web/build.sh",
        dir.display()
    );
    dir
}

/// Where tests leave screenshots: `<target>/test-output`.
pub fn output_dir() -> PathBuf {
    let dir = target_path("test-output");
    std::fs::create_dir_all(&dir).expect("the test output directory can be made");
    dir
}

/// The app in a browser of its own.
pub struct AppPage {
    pub user: String,
    browser: Browser,
}

impl AppPage {
    /// Opens the app at `url` and waits for its login screen.
    pub fn open(url: &str, user: &str) -> Self {
        Self::open_with(url, user, &[])
    }

    /// Opens the app in a browser started with extra Chromium `flags`.
    pub fn open_with(url: &str, user: &str, flags: &[&str]) -> Self {
        let browser = Browser::start_with(flags);
        browser.navigate(url);
        let page = Self {
            user: user.to_owned(),
            browser,
        };
        page.wait_for_text("#username", "the login screen", |_| true);
        page
    }

    /// Types the username and presses Enter; the server field keeps its default.
    pub fn log_in(&self) {
        self.type_into("#username", &format!("{}{ENTER}", self.user));
    }

    /// Waits until the chat screen says who is signed in.
    pub fn expect_signed_in(&self) {
        let user = self.user.clone();
        self.wait_for_text(".my-name", "the chat screen", |name| name == user);
    }

    /// Waits for the login screen's error and returns it.
    pub fn expect_login_error(&self) -> String {
        self.wait_for_text(".login .error", "a login error", |_| true)
    }

    /// Types `peer` into "add peer" and presses Enter.
    pub fn add_peer(&self, peer: &str) {
        self.type_into(".add-peer input", &format!("{peer}{ENTER}"));
    }

    /// Opens `peer`'s conversation from the list, once `peer` is listed.
    pub fn open_chat(&self, peer: &str) {
        let row = format!(r#".peer[aria-label^="{peer},"]"#);
        self.wait_for_text(&row, &format!("{peer} in the list"), |_| true);
        self.click(&row);
    }

    /// Types `name` into "New room" and presses Enter; the new room opens.
    pub fn create_room(&self, name: &str) {
        self.type_into(".new-room input", &format!("{name}{ENTER}"));
        self.wait_for_text(".conversation.room h2", &format!("room {name} open"), |n| {
            n == name
        });
    }

    /// Opens the room `name` from the list, once it is listed.
    pub fn open_room(&self, name: &str) {
        let row = format!(r#".peer[aria-label^="Room {name},"]"#);
        self.wait_for_text(&row, &format!("room {name} in the list"), |_| true);
        self.click(&row);
        self.wait_for_text(".conversation.room h2", &format!("room {name} open"), |n| {
            n == name
        });
    }

    /// Types `peer` into the open room's invite field and presses Enter; waits until the
    /// room lists `peer` among its members.
    pub fn invite(&self, peer: &str) {
        self.type_into(".invite input", &format!("{peer}{ENTER}"));
        let script = "return [...document.querySelectorAll('.room-members .member')]\
                      .some(m => m.textContent === arguments[0]);";
        wait_for(&format!("{}: {peer} among the members", self.user), || {
            (self.browser.execute(script, json!([peer])).ok()? == Value::Bool(true)).then_some(())
        });
    }

    /// Waits until the open room shows `text` in a bubble under `author`'s name.
    pub fn expect_written_by(&self, author: &str, text: &str) {
        let script = "const [author, text] = arguments; \
                      return [...document.querySelectorAll('.bubble.theirs')].some(b => \
                        b.querySelector('.author')?.textContent === author \
                        && b.querySelector('.text')?.textContent === text);";
        wait_for(&format!("{}: {text:?} by {author}", self.user), || {
            let shown = self.browser.execute(script, json!([author, text]));
            (shown.ok()? == Value::Bool(true)).then_some(())
        });
    }

    /// Waits until the open conversation's header shows `status`.
    pub fn expect_status(&self, status: &str) {
        self.wait_for_text(".conversation-header .status", status, |s| s == status);
    }

    /// Types `text` into the message field and presses Enter.
    pub fn send(&self, text: &str) {
        self.type_into(".composer input.message", &format!("{text}{ENTER}"));
    }

    /// Waits until the open conversation shows `text` in a bubble of `side` ("mine" or
    /// "theirs").
    pub fn expect_bubble(&self, side: &str, text: &str) {
        let script = "return [...document.querySelectorAll(arguments[0])]\
                      .map(e => e.textContent);";
        let selector = format!(".bubble.{side} .text");
        wait_for(&format!("{}: {side} bubble {text:?}", self.user), || {
            let texts = self.browser.execute(script, json!([selector])).ok()?;
            texts.as_array()?.iter().any(|t| t == text).then_some(())
        });
    }

    /// Waits until my message `text` shows ✓✓: the peer acknowledged it.
    pub fn expect_delivered(&self, text: &str) {
        let script = "return [...document.querySelectorAll('.bubble.mine')]\
                      .some(b => b.querySelector('.text')?.textContent === arguments[0] \
                      && b.querySelector('.delivery[aria-label=delivered]') !== null);";
        wait_for(&format!("{}: ✓✓ on {text:?}", self.user), || {
            (self.browser.execute(script, json!([text])).ok()? == Value::Bool(true)).then_some(())
        });
    }

    /// Opens who has my room message `text` (its ✓ / ✓✓) and waits until that line says
    /// `words`.
    pub fn expect_holders(&self, text: &str, words: &str) {
        let script = "const b = [...document.querySelectorAll('.bubble.mine')]\
                        .find(b => b.querySelector('.text')?.textContent === arguments[0]); \
                      const mark = b?.querySelector('button.delivery'); \
                      if (mark?.getAttribute('aria-expanded') === 'false') { mark.click(); } \
                      return b?.querySelector('.holders')?.textContent ?? null;";
        wait_for(&format!("{}: who has {text:?}: {words}", self.user), || {
            let shown = self.browser.execute(script, json!([text])).ok()?;
            (shown == words).then_some(())
        });
    }

    /// Opens the conversation's connection details and waits until they show `route` and the
    /// peer online; returns the round-trip time shown.
    pub fn expect_route(&self, route: &str) -> String {
        self.click(r#"button[aria-label="Connection details"]"#);
        self.wait_for_text(".peer-info .route", route, |r| r == route);
        self.wait_for_text(".peer-info .presence", "presence", |p| p == "Online");
        self.wait_for_text(".peer-info .rtt", "a round-trip time", |rtt| {
            rtt.ends_with(" ms")
        })
    }

    /// With the info panel open: the peer's identity shows as not verified yet, with its
    /// safety number (12 groups of 5 digits), which is returned.
    pub fn expect_safety_number(&self) -> String {
        self.wait_for_text(".peer-info .identity", "an identity state", |state| {
            state.starts_with("Not verified yet")
        });
        self.wait_for_text(".peer-info .safety-number", "a safety number", |number| {
            number.split(' ').count() == 12
                && number
                    .split(' ')
                    .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit()))
        })
    }

    /// Marks the peer verified in the info panel and waits until it says so.
    pub fn mark_verified(&self) {
        self.click("button.verify");
        self.wait_for_text(".peer-info .identity", "verified", |state| {
            state.starts_with("Verified")
        });
    }

    /// Picks the file at `path` in the conversation's "Send an image" field.
    pub fn send_file(&self, path: &std::path::Path) {
        let path = path.to_str().expect("a UTF-8 path");
        self.type_into(r#"input[type="file"]"#, path);
    }

    /// The web app manifest the page links to, as the browser fetches it.
    pub fn manifest(&self) -> Value {
        let script = "const done = arguments[0]; \
            fetch(document.querySelector('link[rel=manifest]').href) \
              .then(r => r.json()).then(done, e => done({ error: String(e) }));";
        self.browser.run_async(&self.user, script, json!([]))
    }

    /// Pastes a small PNG named `name` into the message field, as a clipboard paste of an
    /// image delivers it.
    pub fn paste_picture(&self, name: &str) {
        self.hand_over_picture(
            name,
            ".composer input.message",
            "new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true })",
        );
    }

    /// Drops a small PNG named `name` on the open chat, as dragging a file from the desktop
    /// onto the page delivers it.
    pub fn drop_picture(&self, name: &str) {
        self.hand_over_picture(
            name,
            "section.conversation",
            "new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true })",
        );
    }

    /// Draws a small PNG named `name` on a canvas and dispatches `event` (a JS expression
    /// that reads the file from `data`, a `DataTransfer`) on the element at `selector`.
    fn hand_over_picture(&self, name: &str, selector: &str, event: &str) {
        let script = format!(
            "const [name, done] = arguments; \
            const canvas = document.createElement('canvas'); canvas.width = 64; canvas.height = 48; \
            const g = canvas.getContext('2d'); g.fillStyle = '#e4572e'; g.fillRect(0, 0, 64, 48); \
            canvas.toBlob(blob => {{ \
              const data = new DataTransfer(); \
              data.items.add(new File([blob], name, {{ type: 'image/png' }})); \
              document.querySelector('{selector}').dispatchEvent({event}); \
              done(null); \
            }}, 'image/png');"
        );
        self.browser.run_async(&self.user, &script, json!([name]));
    }

    /// Waits until a `side` bubble shows the picture `name`, decoded (so every byte of it
    /// arrived intact), and, for mine, with ✓✓.
    pub fn expect_picture(&self, side: &str, name: &str, delivered: bool) {
        let script = "const [side, name, delivered] = arguments; \
                      return [...document.querySelectorAll('.bubble.' + side)].some(b => { \
                        const img = b.querySelector('img.picture'); \
                        return img && img.alt === name && img.complete && img.naturalWidth > 0 \
                          && (!delivered || b.querySelector('.delivery[aria-label=delivered]'));});";
        let what = format!("{}: picture {name:?} in a {side} bubble", self.user);
        wait_for(&what, || {
            let shown = self.browser.execute(script, json!([side, name, delivered]));
            (shown.ok()? == Value::Bool(true)).then_some(())
        });
    }

    /// Narrows the window to a phone's width.
    pub fn use_phone_width(&self) {
        self.browser
            .set_window_size(390, 780)
            .unwrap_or_else(|e| panic!("{}: resizing: {e}", self.user));
    }

    /// Whether the element matching `selector` is laid out (not `display: none`); fails
    /// the test if there is no such element or the page cannot say.
    pub fn is_shown(&self, selector: &str) -> bool {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e ? getComputedStyle(e).display !== 'none' : null;";
        match self.browser.execute(script, json!([selector])) {
            Ok(Value::Bool(shown)) => shown,
            other => panic!(
                "{}: cannot tell whether {selector} is shown: {other:?}",
                self.user
            ),
        }
    }

    /// Goes back from a conversation to the peer list (the phone layout's back button).
    pub fn go_back(&self) {
        self.click(r#"button[aria-label="Back to peers"]"#);
    }

    /// Lets the page show notifications, as a person answering the browser's prompt
    /// would, and records every one the page creates in `window.peerchatNotified` (the real
    /// `Notification` still runs).
    pub fn allow_notifications(&self) {
        self.browser
            .devtools(
                "Browser.grantPermissions",
                json!({ "permissions": ["notifications"] }),
            )
            .unwrap_or_else(|e| panic!("{}: granting notifications: {e}", self.user));
        let record = "const Shown = window.Notification; window.peerchatNotified = []; \
                      window.Notification = class extends Shown { \
                          constructor(title, options) { \
                              window.peerchatNotified.push({ title, body: options && options.body }); \
                              super(title, options); } };";
        self.browser
            .execute(record, json!([]))
            .unwrap_or_else(|e| panic!("{}: recording notifications: {e}", self.user));
    }

    /// Clicks "Notify me" and waits until the button is gone (the answer came).
    pub fn ask_to_notify(&self) {
        self.click("#ask-to-notify");
        wait_for(&format!("{}: notifications allowed", self.user), || {
            let script = "return document.querySelector('#ask-to-notify') === null;";
            matches!(
                self.browser.execute(script, json!([])),
                Ok(Value::Bool(true))
            )
            .then_some(())
        });
    }

    /// Waits for a notification titled `title` saying `body`.
    pub fn expect_notification(&self, title: &str, body: &str) {
        let wanted = json!({ "title": title, "body": body });
        wait_for(&format!("{}: a notification {wanted}", self.user), || {
            let shown = self
                .browser
                .execute("return window.peerchatNotified || [];", json!([]));
            match shown {
                Ok(Value::Array(shown)) => shown.contains(&wanted).then_some(()),
                _ => None,
            }
        });
    }

    /// The tab's title.
    pub fn title(&self) -> String {
        match self.browser.execute("return document.title;", json!([])) {
            Ok(Value::String(title)) => title,
            other => panic!("{}: no title: {other:?}", self.user),
        }
    }

    /// What loading the page took from the network so far, per response (Resource
    /// Timing): its URL's path, the bytes transferred (headers and the body as encoded by
    /// the server) and the body's size once decoded.
    pub fn transfers(&self) -> Vec<(String, u64, u64)> {
        let script = "return performance.getEntriesByType('navigation') \
                          .concat(performance.getEntriesByType('resource')) \
                          .map(e => [new URL(e.name).pathname, e.transferSize, e.decodedBodySize]);";
        let Ok(Value::Array(entries)) = self.browser.execute(script, json!([])) else {
            panic!("{}: no resource timing", self.user);
        };
        (entries.iter())
            .map(|e| {
                let path = e[0].as_str().unwrap_or_default().to_owned();
                (path, e[1].as_u64().unwrap_or(0), e[2].as_u64().unwrap_or(0))
            })
            .collect()
    }

    /// Waits for the banner saying the app is offline.
    pub fn expect_offline(&self) {
        self.wait_for_text(".banner", "the offline banner", |text| {
            text.starts_with("Offline")
        });
    }

    /// Waits until no banner says the app is offline.
    pub fn expect_online(&self) {
        let script = "return document.querySelector('.banner') === null;";
        wait_for(&format!("{}: back online", self.user), || {
            matches!(
                self.browser.execute(script, json!([])),
                Ok(Value::Bool(true))
            )
            .then_some(())
        });
    }

    /// The page's background colour as the browser computed it (`rgb(r, g, b)`).
    pub fn background(&self) -> String {
        let script = "return getComputedStyle(document.body).backgroundColor;";
        match self.browser.execute(script, json!([])) {
            Ok(Value::String(colour)) => colour,
            other => panic!("{}: no background colour: {other:?}", self.user),
        }
    }

    /// Whether the page is a secure context (HTTPS, or localhost): what Web Locks, service
    /// workers and notifications need.
    pub fn is_secure_context(&self) -> bool {
        match self
            .browser
            .execute("return window.isSecureContext;", json!([]))
        {
            Ok(Value::Bool(secure)) => secure,
            other => panic!("{}: cannot tell: {other:?}", self.user),
        }
    }

    /// Waits until a service worker controls the page and has kept the app's shell.
    pub fn expect_service_worker(&self) {
        let script = "return !!(navigator.serviceWorker && navigator.serviceWorker.controller);";
        wait_for(
            &format!("{}: a service worker in control", self.user),
            || {
                matches!(
                    self.browser.execute(script, json!([])),
                    Ok(Value::Bool(true))
                )
                .then_some(())
            },
        );
    }

    /// Opens `url` again, as a person's next visit would, and waits for the login screen;
    /// returns the bytes that visit took from the network (Resource Timing's
    /// `transferSize` of the page and everything it loaded) and how many of its responses
    /// a service worker answered.
    pub fn visit_again(&self, url: &str) -> (u64, u64) {
        self.browser.navigate(url);
        self.wait_for_text("#username", "the login screen", |_| true);
        // Until the page has loaded whole, so a late fetch is counted too.
        wait_for(&format!("{}: the page loaded", self.user), || {
            let state = self
                .browser
                .execute("return document.readyState;", json!([]));
            (state.ok()? == "complete").then_some(())
        });
        let script = "const all = performance.getEntriesByType('navigation')                           .concat(performance.getEntriesByType('resource'));                       return [all.reduce((sum, e) => sum + e.transferSize, 0),                               all.filter(e => e.workerStart > 0).length];";
        match self.browser.execute(script, json!([])) {
            Ok(Value::Array(figures)) => (
                figures[0].as_u64().unwrap_or(u64::MAX),
                figures[1].as_u64().unwrap_or(0),
            ),
            other => panic!("{}: no resource timing: {other:?}", self.user),
        }
    }

    /// Saves what the page shows as `<target>/test-output/<name>.png`; returns the path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .browser
            .screenshot()
            .unwrap_or_else(|e| panic!("{}: screenshot failed: {e}", self.user));
        assert!(
            png.starts_with(b"\x89PNG"),
            "{}: the screenshot is not a PNG",
            self.user
        );
        let path = output_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot can be saved");
        path
    }

    fn type_into(&self, selector: &str, text: &str) {
        self.browser
            .type_into(selector, text)
            .unwrap_or_else(|e| panic!("{}: typing into {selector}: {e}", self.user));
    }

    fn click(&self, selector: &str) {
        self.browser
            .click(selector)
            .unwrap_or_else(|e| panic!("{}: clicking {selector}: {e}", self.user));
    }

    /// Waits until the element matching `selector` exists and its text passes `wanted`;
    /// returns the text.
    fn wait_for_text(&self, selector: &str, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e ? e.textContent : null;";
        wait_for(&format!("{}: {what}", self.user), || {
            match self.browser.execute(script, json!([selector])) {
                Ok(Value::String(text)) if wanted(&text) => Some(text),
                _ => None,
            }
        })
    }
}

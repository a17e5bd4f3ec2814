//! End to end through peerchat's real web app (platforms/web) in headless Chromium: people
//! log in, add each other and chat by typing and clicking, as they would.
//!
//! The app comes from peerchat-server's HTTP port and joins its `/mqtt` endpoint by
//! default, exactly as at `http://localhost:8080`. Each test runs in a private network
//! namespace (see tests/browser.rs). Screenshots land in `<target>/test-output`.

use peerchat_e2e::app_page::{AppPage, app_dir};
use peerchat_e2e::{PeerchatServer, TempDir, namespaced_test, wait_for};

namespaced_test! {
    fn two_people_chat_through_the_web_app() {
        let server = PeerchatServer::serving(&app_dir());
        let alice = AppPage::open(&server.http_url, "alice");
        let bob = AppPage::open(&server.http_url, "bob");
        alice.log_in();
        bob.log_in();
        alice.expect_signed_in();
        bob.expect_signed_in();

        alice.add_peer("bob");
        alice.expect_status("connected");
        bob.open_chat("alice");
        bob.expect_status("connected");

        alice.send("hello bob");
        alice.expect_bubble("mine", "hello bob");
        bob.expect_bubble("theirs", "hello bob");
        alice.expect_delivered("hello bob");
        bob.send("hi alice, got it");
        alice.expect_bubble("theirs", "hi alice, got it");
        bob.expect_delivered("hi alice, got it");

        // A picture: alice's own screen, picked in the file field.
        let picture = alice.screenshot("app-alice-before-picture");
        alice.send_file(&picture);
        bob.expect_picture("theirs", "app-alice-before-picture.png", false);
        alice.expect_picture("mine", "app-alice-before-picture.png", true);
        // And one pasted into the message field.
        bob.paste_picture("pasted.png");
        alice.expect_picture("theirs", "pasted.png", false);
        bob.expect_picture("mine", "pasted.png", true);
        // And one dropped on the chat.
        alice.drop_picture("dropped.png");
        bob.expect_picture("theirs", "dropped.png", false);
        alice.expect_picture("mine", "dropped.png", true);

        let rtt = alice.expect_route("Direct, on the same network");
        println!("alice's info panel: direct, round trip {rtt}");
        // Who is at the other end: both see one safety number, and alice marks bob verified.
        let number = alice.expect_safety_number();
        bob.expect_route("Direct, on the same network");
        assert_eq!(bob.expect_safety_number(), number, "one safety number on both sides");
        alice.mark_verified();
        let mut shots = vec![alice.screenshot("app-alice"), bob.screenshot("app-bob")];

        // At a phone's width the list and the conversation are two screens.
        bob.use_phone_width();
        wait_for("bob: the phone layout", || (!bob.is_shown(".sidebar")).then_some(()));
        assert!(bob.is_shown(".conversation"));
        shots.push(bob.screenshot("app-bob-phone-chat"));
        bob.go_back();
        wait_for("bob: the peer list", || bob.is_shown(".sidebar").then_some(()));
        assert!(!bob.is_shown(".conversation"));
        shots.push(bob.screenshot("app-bob-phone-list"));
        let shots: Vec<_> = shots.iter().map(|p| p.display().to_string()).collect();
        println!("screenshots: {}", shots.join(", "));
    }
}

namespaced_test! {
    /// Light and dark follow the system: a browser that prefers dark gets the dark palette
    /// (the stylesheet's `--bg`, #0f1115), one that does not the light one (#f4f5f7).
    fn light_and_dark_follow_the_system() {
        let server = PeerchatServer::serving(&app_dir());
        let light = AppPage::open(&server.http_url, "alice");
        let dark = AppPage::open_with(&server.http_url, "bob", &["--force-dark-mode"]);
        assert_eq!(light.background(), "rgb(244, 245, 247)");
        assert_eq!(dark.background(), "rgb(15, 17, 21)");
        dark.screenshot("app-dark");
    }
}

namespaced_test! {
    fn a_taken_name_is_refused_on_the_login_screen() {
        let server = PeerchatServer::serving(&app_dir());
        let alice = AppPage::open(&server.http_url, "alice");
        alice.log_in();
        alice.expect_signed_in();

        let impostor = AppPage::open(&server.http_url, "alice");
        impostor.log_in();
        let error = impostor.expect_login_error();
        assert!(error.contains("already taken"), "login error: {error}");
        impostor.screenshot("app-name-taken");
    }
}

namespaced_test! {
    /// The app keeps its shell in a service worker: the next visit loads the page, its
    /// script and its wasm from there. With the server gone, someone who used the app here
    /// before still opens it: offline, with the history of their chats; once the server is
    /// back, they are online again by themselves.
    fn the_next_visit_loads_from_the_kept_shell_and_opens_offline() {
        let mut server = PeerchatServer::serving(&app_dir());
        let alice = AppPage::open(&server.http_url, "alice");
        let bob = AppPage::open(&server.http_url, "bob");
        alice.expect_service_worker();
        // Installable: the page links a manifest for a standalone app with an icon.
        let manifest = alice.manifest();
        assert_eq!(manifest["display"], "standalone", "{manifest}");
        assert_eq!(manifest["start_url"], "./", "{manifest}");
        assert!(manifest["icons"][0]["src"].is_string(), "{manifest}");
        sign_in_and_chat(&alice, &bob, "kept for later", "me too");

        let (bytes, from_worker) = alice.visit_again(&server.http_url);
        println!("second visit: {bytes} bytes from the network, {from_worker} responses from the service worker");
        assert!(from_worker >= 3, "the page, its script and its wasm: {from_worker}");
        assert_eq!(bytes, 0, "the next visit takes nothing from the network");
        server.stop();
        alice.visit_again(&server.http_url);
        alice.log_in();
        alice.expect_signed_in();
        alice.expect_offline();
        alice.add_peer("bob");
        alice.expect_bubble("mine", "kept for later");
        alice.expect_bubble("theirs", "me too");
        alice.screenshot("app-offline");
        server.resume();
        alice.expect_online();
    }
}

namespaced_test! {
    /// A message for a chat that is not in view raises a notification, once the user
    /// allowed them from the "Notify me" button; the tab's title counts what is unread.
    fn a_message_for_a_chat_not_in_view_raises_a_notification() {
        let server = PeerchatServer::serving(&app_dir());
        let alice = AppPage::open(&server.http_url, "alice");
        let bob = AppPage::open(&server.http_url, "bob");
        alice.log_in();
        bob.log_in();
        alice.expect_signed_in();
        bob.expect_signed_in();
        assert!(bob.is_shown("#ask-to-notify"), "bob has not been asked yet");
        bob.allow_notifications();
        bob.ask_to_notify();

        // Bob has carol's chat open when alice writes.
        bob.add_peer("carol");
        alice.add_peer("bob");
        alice.expect_status("connected");
        alice.send("are you there?");
        bob.expect_notification("alice", "are you there?");
        wait_for("bob: the unread count in the title", || {
            (bob.title() == "(1) peerchat").then_some(())
        });
        bob.screenshot("app-bob-notified");
        bob.open_chat("alice");
        bob.expect_bubble("theirs", "are you there?");
        wait_for("bob: the title without unread", || {
            (bob.title() == "peerchat").then_some(())
        });
    }
}

namespaced_test! {
    /// Alice, who chats with Bob, makes a room from the sidebar and invites him; each
    /// writes into it, and both rooms show both messages, others' under their author, and
    /// a picture each sends (picked, pasted); a room message while another chat is open
    /// raises a notification.
    fn two_people_write_into_a_room_made_in_the_app() {
        let server = PeerchatServer::serving(&app_dir());
        let alice = AppPage::open(&server.http_url, "alice");
        let bob = AppPage::open(&server.http_url, "bob");
        sign_in_and_chat(&alice, &bob, "shall we read together?", "yes, make a room");

        alice.create_room("book club");
        alice.invite("bob");
        bob.open_room("book club");
        alice.send("welcome to the club");
        alice.expect_bubble("mine", "welcome to the club");
        bob.expect_written_by("alice", "welcome to the club");
        bob.send("glad to be here");
        bob.expect_bubble("mine", "glad to be here");
        alice.expect_written_by("bob", "glad to be here");
        // Both members hold each message: ✓✓ on both sides, and the mark says who has it.
        alice.expect_delivered("welcome to the club");
        bob.expect_delivered("glad to be here");
        alice.expect_holders("welcome to the club", "Has it: bob");
        // A picture, picked with the room composer's "+" as in a 1:1 chat: bob sees it
        // decoded, alice sees it with ✓✓ once bob holds it.
        let picture = alice.screenshot("app-alice-room-picture");
        alice.send_file(&picture);
        bob.expect_picture("theirs", "app-alice-room-picture.png", false);
        alice.expect_picture("mine", "app-alice-room-picture.png", true);
        // And one bob pastes into the room's message field.
        bob.paste_picture("room-pasted.png");
        alice.expect_picture("theirs", "room-pasted.png", false);
        bob.expect_picture("mine", "room-pasted.png", true);
        alice.screenshot("app-alice-room");
        bob.screenshot("app-bob-room");

        // With his chat with alice open instead, bob is notified of the room's next message.
        bob.allow_notifications();
        bob.ask_to_notify();
        bob.open_chat("alice");
        alice.send("chapter one by Friday?");
        bob.expect_notification("alice in book club", "chapter one by Friday?");
        wait_for("bob: the room's unread message in the title", || {
            (bob.title() == "(1) peerchat").then_some(())
        });
    }
}

/// Alice and Bob log in, Alice adds Bob, and each writes one message the other sees.
fn sign_in_and_chat(alice: &AppPage, bob: &AppPage, from_alice: &str, from_bob: &str) {
    alice.log_in();
    bob.log_in();
    alice.expect_signed_in();
    bob.expect_signed_in();
    alice.add_peer("bob");
    alice.expect_status("connected");
    bob.open_chat("alice");
    alice.send(from_alice);
    bob.expect_bubble("theirs", from_alice);
    bob.send(from_bob);
    alice.expect_bubble("theirs", from_bob);
}

/// The most a first visit may take from the network, in bytes, as the server sends it to
/// Chromium over HTTPS (brotli). It holds the size reached, so nothing grows it unnoticed;
/// the target is 150 KB (see docs/benchmarks.md).
const FIRST_LOAD_BUDGET: u64 = 264_000;

/// Prints what alice's first visit transferred, file by file, and holds it to the budget.
fn first_load_within_budget(page: &AppPage) {
    // The shell's files are all fetched before the login screen shows; the service worker
    // precaches them again, from the HTTP cache.
    let transfers = page.transfers();
    let mut seen = std::collections::BTreeMap::new();
    for (path, sent, decoded) in &transfers {
        let entry = seen.entry(path.clone()).or_insert((0, 0));
        entry.0 += sent;
        entry.1 = entry.1.max(*decoded);
    }
    let total: u64 = seen.values().map(|(sent, _)| sent).sum();
    for (path, (sent, decoded)) in &seen {
        println!("first load: {path:<70} {sent:>8} bytes sent, {decoded:>8} decoded");
    }
    println!("first load over HTTPS: {total} bytes in all (budget {FIRST_LOAD_BUDGET})");
    assert!(
        total <= FIRST_LOAD_BUDGET,
        "the first load grew to {total} bytes"
    );
}

namespaced_test! {
    /// The app over HTTPS at a LAN address (not loopback), as `platforms/web/serve.sh
    /// --tls` with a certificate from `platforms/web/make-cert.sh` serves it: the page is a
    /// secure context, and two people chat through WSS.
    fn over_https_at_a_lan_address_the_app_is_a_secure_context_and_chats() {
        // The namespace's own address (tests/support/netns.sh).
        let address = "198.18.0.1";
        let certs = TempDir::new("tls");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../platforms/web/make-cert.sh");
        let made = std::process::Command::new(script)
            .arg(&certs.0)
            .arg(address)
            .output()
            .expect("make-cert.sh runs");
        assert!(made.status.success(), "make-cert.sh: {made:?}");
        let said = String::from_utf8_lossy(&made.stdout);
        let spki = (said.lines())
            .find_map(|line| line.split_once("--ignore-certificate-errors-spki-list): "))
            .map(|(_, hash)| hash.trim().to_owned())
            .unwrap_or_else(|| panic!("make-cert.sh printed no SPKI hash: {said}"));
        let server = PeerchatServer::serving_over_tls(&app_dir(), address, &certs.0);
        assert!(server.http_url.starts_with("https://198.18.0.1:"));
        // The browser trusts this one certificate, as a person would after importing it.
        let trust = format!("--ignore-certificate-errors-spki-list={spki}");
        let alice = AppPage::open_with(&server.http_url, "alice", &[&trust]);
        let bob = AppPage::open_with(&server.http_url, "bob", &[&trust]);
        assert!(alice.is_secure_context(), "HTTPS makes a secure context");
        first_load_within_budget(&alice);
        sign_in_and_chat(&alice, &bob, "over https", "and back");
        alice.screenshot("app-https");
    }
}

//! Runs a test inside a private network namespace (tests/support/netns.sh), so browsers and
//! CLIs get the interfaces WebRTC needs while no packet can reach the machine's real network.
//!
//! The test binary re-executes itself for just that test under netns.sh, which gives it a
//! fresh namespace; processes the test starts inherit it and it vanishes with the last one.

use std::path::Path;
use std::process::Command;

/// Set (to `inside`) by netns.sh once the namespace is ready.
const INSIDE: &str = "PEERCHAT_NETNS";

/// Runs `body` inside a private network namespace. `test_name` is the test's libtest name
/// (its path inside the test binary), used to run it again inside the namespace.
pub fn in_private_network(test_name: &str, body: impl FnOnce()) {
    if is_inside() {
        return body();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/netns.sh");
    let exe = std::env::current_exe().expect("the test knows its own path");
    let output = Command::new(&script)
        .arg(exe)
        .args([test_name, "--exact", "--include-ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Printed through the test harness, so it shows with the failure (or with --nocapture).
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        output.status.code() != Some(77),
        "`{test_name}` needs root to create a private network namespace: {stderr}"
    );
    assert!(
        output.status.success(),
        "`{test_name}` failed inside its network namespace (its output is above)"
    );
    assert!(
        stdout.contains("running 1 test"),
        "`{test_name}` did not run inside the namespace: is the name right?"
    );
}

/// Whether this process runs inside a namespace made by netns.sh.
pub fn is_inside() -> bool {
    std::env::var(INSIDE).as_deref() == Ok("inside")
}

/// Declares a `#[test]` whose body runs inside its own private network namespace.
#[macro_export]
macro_rules! namespaced_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            $crate::netns::in_private_network(stringify!($name), || $body);
        }
    };
}

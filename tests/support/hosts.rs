//! Hosts for network tests: named network namespaces this test creates, linked by veth
//! pairs, so a test can build a small network (a router, a phone with Wi-Fi and mobile
//! data) and change it under running clients. No interface is created outside these
//! namespaces, so nothing reaches the machine's own network. Needs root.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// One namespace, deleted when dropped (after the processes in it, which the test drops
/// first by declaring them later).
pub struct Host {
    /// The namespace's name, unique to this test process.
    pub name: &'static str,
}

impl Host {
    /// A fresh namespace with loopback up and IPv6 off (these networks are IPv4 only, and
    /// IPv6 link-local addresses would come and go with every link change).
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // A name per process and host: parallel test binaries never share one. Leaked, so
        // `Network::Host` can be `Copy` like the other networks; a test makes a handful.
        let name: &'static str =
            Box::leak(format!("pc{}-{n}-{label}", std::process::id()).into_boxed_str());
        ip(&["netns", "add", name]);
        let host = Self { name };
        host.run("ip link set lo up && sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
        host
    }

    /// Runs a shell script inside the namespace; panics with its output if it fails.
    pub fn run(&self, script: &str) {
        let output = Command::new("ip")
            .args(["netns", "exec", self.name, "sh", "-ec", script])
            .stdin(Stdio::null())
            .output()
            .expect("ip runs");
        assert!(
            output.status.success(),
            "in {}: `{script}` failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A command that runs `program` inside the namespace (`ip netns exec` execs it, so the
    /// child's pid is the program's own).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", self.name]).arg(program);
        command
    }

    /// Links this host's interface `name` to `other`'s `other_name` with a veth pair; both
    /// ends start down and without addresses.
    pub fn link(&self, name: &str, other: &Host, other_name: &str) {
        ip(&[
            "link", "add", name, "netns", self.name, "type", "veth", "peer", "name", other_name,
            "netns", other.name,
        ]);
    }
}

/// Links the namespace this process runs in (its own private one: see [`crate::netns`])
/// to `other`'s interface `other_name`, through this side's interface `name`.
pub fn link_here(name: &str, other: &Host, other_name: &str) {
    assert!(
        crate::netns::is_inside(),
        "linking to the test's own namespace outside a private one would touch the machine's network"
    );
    ip(&[
        "link", "add", name, "type", "veth", "peer", "name", other_name, "netns", other.name,
    ]);
}

/// Runs a shell script in this process's own private namespace.
pub fn run_here(script: &str) {
    assert!(crate::netns::is_inside(), "only inside a private namespace");
    let output = Command::new("sh")
        .args(["-ec", script])
        .stdin(Stdio::null())
        .output()
        .expect("sh runs");
    assert!(
        output.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", self.name])
            .status();
    }
}

/// Whether this process may create namespaces (root), for a clear message if not.
pub fn can_create() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        output.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

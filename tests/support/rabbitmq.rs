//! A RabbitMQ cluster of its own for a test: Debian's `rabbitmq-server` with the MQTT and
//! Web MQTT plugins, nodes on free loopback ports, joined into one cluster, removed on drop.
//! Slow to start (several seconds a node): share one per test binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Broker, Process, TempDir, free_port};

/// How long a node may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Erlang's port mapper and the nodes' distribution listen on loopback only.
const LOOPBACK_ONLY: [(&str, &str); 2] = [
    ("ERL_EPMD_ADDRESS", "127.0.0.1"),
    (
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
        "-kernel inet_dist_use_interface {127,0,0,1}",
    ),
];

/// One node of the cluster.
pub struct RabbitNode {
    pub name: String,
    pub broker: Broker,
    _process: Process,
}

/// A cluster of RabbitMQ nodes on this machine.
pub struct RabbitCluster {
    pub nodes: Vec<RabbitNode>,
    _dir: TempDir,
}

impl RabbitCluster {
    /// Starts `count` nodes and joins every one after the first to it.
    pub fn start(count: usize) -> Self {
        assert!(
            Path::new("/usr/sbin/rabbitmq-server").exists(),
            "rabbitmq-server is not installed (tests/run.sh installs it)"
        );
        let dir = TempDir::new("rabbitmq");
        let host = hostname();
        let run = std::process::id();
        let mut nodes = Vec::new();
        for n in 0..count {
            let name = format!("peerchat{run}n{n}@{host}");
            nodes.push(start_node(&dir.0.join(format!("n{n}")), &name));
        }
        for node in &nodes[1..] {
            for step in [
                vec!["stop_app"],
                vec!["join_cluster", &nodes[0].name],
                vec!["start_app"],
            ] {
                rabbitmqctl(&node.name, &step);
            }
        }
        Self { nodes, _dir: dir }
    }
}

/// Starts one node with its own directories, ports and plugins, and waits until it runs.
fn start_node(dir: &Path, name: &str) -> RabbitNode {
    let (amqp, mqtt, web_mqtt, dist) = (free_port(), free_port(), free_port(), free_port());
    for sub in ["mnesia", "log"] {
        std::fs::create_dir_all(dir.join(sub)).expect("node directories");
    }
    let config = format!(
        "listeners.tcp.default = 127.0.0.1:{amqp}\n\
         mqtt.listeners.tcp.default = 127.0.0.1:{mqtt}\n\
         mqtt.allow_anonymous = true\n\
         web_mqtt.tcp.listener = 127.0.0.1:{web_mqtt}\n\
         loopback_users = none\n"
    );
    std::fs::write(dir.join("rabbitmq.conf"), config).expect("config written");
    std::fs::write(
        dir.join("enabled_plugins"),
        "[rabbitmq_mqtt,rabbitmq_web_mqtt].\n",
    )
    .expect("plugins written");
    // The server runs as the `rabbitmq` user: its directories must be its own.
    let chown = Command::new("chown")
        .args(["-R", "rabbitmq:rabbitmq"])
        .arg(dir)
        .status()
        .expect("chown runs");
    assert!(chown.success(), "cannot hand {} to rabbitmq", dir.display());
    let process = Command::new("/usr/sbin/rabbitmq-server")
        .envs(node_environment(dir, name))
        .envs(LOOPBACK_ONLY)
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rabbitmq-server starts");
    let process = Process(process);
    let started = Instant::now();
    loop {
        let ready = Command::new("rabbitmqctl")
            .envs(LOOPBACK_ONLY)
            .args(["-n", name, "await_startup", "--timeout", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "RabbitMQ node {name} did not start within {START_TIMEOUT:?} (logs in {})",
            dir.join("log").display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    RabbitNode {
        name: name.to_owned(),
        broker: Broker {
            tcp_url: format!("mqtt://127.0.0.1:{mqtt}"),
            ws_url: format!("ws://127.0.0.1:{web_mqtt}/ws"),
        },
        _process: process,
    }
}

/// The environment that gives a node its own name, files and directories.
fn node_environment(dir: &Path, name: &str) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("RABBITMQ_NODENAME", PathBuf::from(name)),
        ("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf")),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins")),
        ("RABBITMQ_MNESIA_BASE", dir.join("mnesia")),
        ("RABBITMQ_LOG_BASE", dir.join("log")),
        ("RABBITMQ_FEATURE_FLAGS_FILE", dir.join("feature_flags")),
    ]
}

fn rabbitmqctl(node: &str, args: &[&str]) {
    let output = Command::new("rabbitmqctl")
        .envs(LOOPBACK_ONLY)
        .args(["-n", node])
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl -n {node} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for RabbitNode {
    /// Stops the node itself: the process started is only the wrapper that runs it as the
    /// `rabbitmq` user.
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .envs(LOOPBACK_ONLY)
            .args(["-n", &self.name, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn hostname() -> String {
    let output = Command::new("hostname")
        .arg("-s")
        .output()
        .expect("hostname runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

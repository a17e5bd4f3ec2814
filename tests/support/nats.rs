//! A three-node NATS cluster on free loopback ports (Debian's `nats-server`, JetStream on,
//! MQTT and MQTT-over-WebSocket listeners), and `peerchat-server` gateways over it.
//!
//! Each node runs under a small shell that kills it when the test process's end of its
//! stdin closes, so a cluster shared by a whole test binary (kept in a `static`, never
//! dropped) still goes away with the binary. A node can be killed and started again.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Broker, PATIENCE, PeerchatServer, TempDir, free_port, wait_until_listening};

/// Where Debian puts the server (`tests/run.sh` installs it).
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A running NATS cluster.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
    _dir: TempDir,
}

/// One node: its ports, and its process while it runs.
pub struct NatsNode {
    pub name: String,
    pub client_port: u16,
    pub mqtt_port: u16,
    pub ws_port: u16,
    pub monitor_port: u16,
    config: PathBuf,
    process: Option<NodeProcess>,
}

/// The shell guarding a node, and the node's own pid (to kill it as a crash would).
struct NodeProcess {
    guard: Child,
    pid: u32,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        kill(self.pid, "KILL");
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

impl NatsCluster {
    /// Starts three nodes, configured as `deploy/nats/` says (MQTT consumers in memory, one
    /// copy: see there why), and waits until JetStream has a leader and every listener
    /// answers.
    pub fn start() -> Self {
        assert!(
            std::path::Path::new(NATS_SERVER).exists(),
            "{NATS_SERVER} is missing: `apt-get install nats-server` (tests/run.sh does)"
        );
        // A port found free may be taken by another process before a node binds it: then
        // the whole cluster starts again on other ports.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(cluster) => return cluster,
                Err(why) => {
                    println!("NATS cluster did not start, trying other ports: {why}");
                    failures.push(why);
                }
            }
        }
        panic!("the NATS cluster did not start: {failures:#?}");
    }

    fn try_start() -> Result<Self, String> {
        let dir = TempDir::new("nats");
        // PEERCHAT_NATS_STOCK_MQTT=1 keeps NATS's own MQTT consumer settings (replicated, on
        // disk), to see what they cost a chat's setup.
        let mqtt_consumers = if std::env::var_os("PEERCHAT_NATS_STOCK_MQTT").is_some() {
            ""
        } else {
            ", consumer_replicas: 1, consumer_memory_storage: true"
        };
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_list = (routes.iter())
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let node = NatsNode {
                client_port: free_port(),
                mqtt_port: free_port(),
                ws_port: free_port(),
                monitor_port: free_port(),
                config: dir.0.join(format!("{name}.conf")),
                name,
                process: None,
            };
            let store = dir.0.join(&node.name);
            let config = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                 jetstream {{ store_dir: \"{store}\" }}\n\
                 cluster {{ name: peerchat, listen: 127.0.0.1:{route}, routes: [{route_list}] }}\n\
                 mqtt {{ listen: 127.0.0.1:{mqtt} {consumers} }}\n\
                 websocket {{ listen: 127.0.0.1:{ws}, no_tls: true }}\n",
                name = node.name,
                client = node.client_port,
                monitor = node.monitor_port,
                store = store.display(),
                mqtt = node.mqtt_port,
                consumers = mqtt_consumers,
                ws = node.ws_port,
            );
            std::fs::write(&node.config, config).expect("NATS config written");
            nodes.push(node);
        }
        let mut cluster = Self { nodes, _dir: dir };
        for i in 0..3 {
            cluster.nodes[i].run();
        }
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// The URLs a gateway joins with (`--cluster`).
    pub fn urls(&self) -> String {
        (self.nodes.iter())
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills node `i` as a crash would.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].process = None;
    }

    /// Starts node `i` again on its ports and data.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].run();
        wait_until_listening(self.nodes[i].client_port);
    }

    /// Waits until every node serves clients and JetStream has a meta leader; what went
    /// wrong (with the node's log) if not.
    fn wait_ready(&self) -> Result<(), String> {
        let started = Instant::now();
        for node in &self.nodes {
            for port in [node.client_port, node.mqtt_port, node.ws_port] {
                while TcpStream::connect(("127.0.0.1", port)).is_err() {
                    if started.elapsed() > PATIENCE / 3 {
                        let log = std::fs::read_to_string(node.config.with_extension("conf.log"))
                            .unwrap_or_default();
                        let tail: Vec<&str> = log.lines().rev().take(5).collect();
                        return Err(format!("{} not listening on {port}: {tail:?}", node.name));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        loop {
            let ready = (self.nodes.iter()).all(|node| {
                http_get(node.monitor_port, "/jsz").is_some_and(|body| {
                    body.contains("\"meta_cluster\"") && body.contains("\"leader\"")
                })
            });
            if ready {
                break;
            }
            if started.elapsed() > PATIENCE * 2 {
                return Err("the NATS cluster elected no JetStream leader".to_owned());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // NATS creates its MQTT streams on the first MQTT connection; connections made
        // while that happens may be dropped. One connection per node, one after the other,
        // before any test connects.
        for node in &self.nodes {
            while !mqtt_connects(node.mqtt_port) {
                if started.elapsed() > PATIENCE * 2 {
                    return Err(format!("{}: MQTT never accepted a connection", node.name));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        println!("NATS cluster ready in {:?}", started.elapsed());
        Ok(())
    }
}

impl NatsNode {
    /// The node as a plain MQTT broker, over TCP and WebSocket (path `/mqtt`).
    pub fn broker(&self) -> Broker {
        Broker {
            tcp_url: format!("mqtt://127.0.0.1:{}", self.mqtt_port),
            ws_url: format!("ws://127.0.0.1:{}/mqtt", self.ws_port),
        }
    }

    fn run(&mut self) {
        assert!(self.process.is_none(), "{} runs already", self.name);
        // The shell starts the node, says its pid, and kills it when stdin closes (the test
        // process ended, however it ended).
        let script = r#"nats-server -c "$1" >"$1.log" 2>&1 </dev/null & pid=$!
echo "$pid"
read -r _
kill -9 "$pid" 2>/dev/null"#;
        let mut guard = Command::new("sh")
            .args(["-c", script, "nats-node"])
            .arg(&self.config)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sh starts nats-server");
        let mut line = String::new();
        BufReader::new(guard.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("the guard says the node's pid");
        let pid = line.trim().parse().expect("a pid");
        // The guard's stdin stays open as long as this process holds it: leak it on
        // purpose, so only the end of the test process closes it.
        std::mem::forget(guard.stdin.take());
        self.process = Some(NodeProcess { guard, pid });
    }
}

/// A `peerchat-server --cluster` gateway on free loopback ports.
pub fn gateway(cluster: &NatsCluster, namespace: &str) -> PeerchatServer {
    PeerchatServer::start_with_flags(&[
        "--cluster",
        &cluster.urls(),
        "--cluster-namespace",
        namespace,
    ])
}

/// A namespace no other test of this run uses (the cluster is shared).
pub fn fresh_namespace(label: &str) -> String {
    format!("t{}_{label}_{}", std::process::id(), free_port())
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {pid} 2>/dev/null")])
        .status();
}

/// Whether an MQTT 3.1.1 CONNECT (clean session) on a loopback port is accepted.
fn mqtt_connects(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let id = format!("peerchat-warmup-{port}");
    let mut connect = vec![0x10, (12 + id.len()) as u8, 0, 4];
    connect.extend_from_slice(b"MQTT");
    connect.extend_from_slice(&[4, 0x02, 0, 30, 0, id.len() as u8]);
    connect.extend_from_slice(id.as_bytes());
    let mut connack = [0u8; 4];
    stream.write_all(&connect).is_ok()
        && stream.read_exact(&mut connack).is_ok()
        && connack == [0x20, 2, 0, 0]
}

/// The body of `GET path` on a loopback port, if it answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

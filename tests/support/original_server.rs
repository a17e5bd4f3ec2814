//! The stand-in for the ORIGINAL app's signaling server (tests/original-server: aedes behind
//! websocket-stream with the original registry's rules), run with Node.js on a free loopback
//! port. It also serves a directory of pages over HTTP on that port.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Process;

/// A running stand-in.
pub struct OriginalServer {
    /// `ws://127.0.0.1:PORT` (any path is MQTT over WebSocket, as on the original).
    pub ws_url: String,
    /// `http://127.0.0.1:PORT/`: the pages of the directory it was given.
    pub http_url: String,
    _process: Process,
}

impl OriginalServer {
    /// Starts the stand-in, serving `pages` (if any) over HTTP on the same port.
    pub fn start(pages: Option<&Path>) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("original-server");
        assert!(
            dir.join("node_modules/aedes").exists(),
            "the original server's stand-in is not installed: run `npm ci --prefix {}` \
             (tests/run.sh does)",
            dir.display()
        );
        let mut command = Command::new("node");
        command.arg(dir.join("server.js")).arg("0");
        if let Some(pages) = pages {
            command.arg(pages);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts (tests/run.sh installs Node.js)");
        let stdout = child.stdout.take().expect("stdout is piped");
        let process = Process(child);
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the stand-in announces its port before exiting")
                .expect("stdout is readable");
            if let Some(addr) = line.strip_prefix("original-server: listening on ") {
                break addr.to_owned();
            }
        };
        // Its log (registers, names freed) shows with a failing test's output.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| println!("{l}")));
        Self {
            ws_url: format!("ws://{addr}"),
            http_url: format!("http://{addr}/"),
            _process: process,
        }
    }
}

//! `peerchat-cli`: a headless peerchat client for scripts, demos and tests.
//!
//! Commands arrive one per line on stdin; events leave on stdout, as text or, with `--json`,
//! one JSON object per line (a stable contract: see the README).

mod command;
mod output;

use std::process::ExitCode;

use clap::Parser;
use futures::StreamExt;
use peerchat_core::room::RoomId;
use peerchat_core::{Client, ClientEvent, ClientOptions, IceServer, Storage};
use tokio::io::{AsyncBufReadExt, BufReader};

use command::{Command, RoomCommand};
use output::Output;

/// Chat peer-to-peer over WebRTC, with an MQTT broker for signaling.
///
/// Reads commands from stdin, one per line:
///   /connect PEER        start a chat with PEER
///   /send PEER TEXT...   send TEXT to PEER
///   /quit                leave (end of input does the same)
#[derive(Debug, Parser)]
#[command(name = "peerchat-cli", version, verbatim_doc_comment)]
struct Flags {
    /// Signaling server: mqtt://HOST:PORT, mqtts://…, ws://HOST:PORT/PATH or wss://…;
    /// repeatable (or a comma list) for the nodes of a cluster: the first is tried first, and
    /// on a lost connection the client moves to another.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    server: Vec<String>,
    /// Your username.
    #[arg(long)]
    user: String,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// A STUN or TURN server URL for ICE (repeatable). None by default.
    #[arg(long = "ice-server", value_name = "URL")]
    ice_servers: Vec<String>,
    /// The username for the TURN servers given.
    #[arg(long, value_name = "NAME", default_value = "")]
    ice_username: String,
    /// The credential (password) for the TURN servers given.
    #[arg(long, value_name = "SECRET", default_value = "")]
    ice_credential: String,
    /// Every chat goes through a TURN server (ICE transport policy `relay`): peers never
    /// learn each other's addresses.
    #[arg(long)]
    relay_only: bool,
    /// Local UDP address to gather ICE candidates on (repeatable). Default: every interface
    /// and loopback.
    #[arg(long = "bind", value_name = "ADDR")]
    bind_addrs: Vec<String>,
    /// Do not resolve browsers' `.local` (mDNS) candidates.
    #[arg(long)]
    no_mdns: bool,
    /// Send every message received straight back to its sender: the far end of round-trip
    /// measurements.
    #[arg(long)]
    echo: bool,
    /// The file holding this user's identity key, made on first start. Default:
    /// `peerchat/<user>.identity` in `$XDG_DATA_HOME` (else `~/.local/share`).
    #[arg(long, value_name = "FILE")]
    identity: Option<std::path::PathBuf>,
    /// Keep history and unacknowledged messages in this SQLite file (created if missing):
    /// after a restart with the same file, messages not yet delivered go out again, once.
    /// One client per file at a time. Without it nothing outlives the process.
    #[arg(long, value_name = "PATH")]
    store: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let output = Output::new(flags.json);

    let mut options = ClientOptions::new(flags.server.join(","), &flags.user);
    if !flags.ice_servers.is_empty() {
        options.ice_servers = vec![IceServer {
            urls: flags.ice_servers.clone(),
            username: flags.ice_username.clone(),
            credential: flags.ice_credential.clone(),
        }];
    }
    options.relay_only = flags.relay_only;
    if !flags.bind_addrs.is_empty() {
        options.bind_addrs = flags.bind_addrs.clone();
    }
    options.mdns = !flags.no_mdns;
    options.identity_file = flags.identity.clone();
    if let Some(path) = &flags.store {
        options.storage = Storage::File(path.clone());
    }

    let (client, mut events) = match Client::connect_with(options).await {
        Ok(connected) => connected,
        Err(error) => {
            output.error(&error.to_string());
            eprintln!("peerchat-cli: {error}");
            return ExitCode::from(2);
        }
    };
    output.connected(&flags.user, client.identity_key().as_deref());

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let line = match line {
                    Ok(Some(line)) => line,
                    Ok(None) | Err(_) => break,
                };
                match Command::parse(&line) {
                    Ok(None) => {}
                    Ok(Some(Command::Quit)) => break,
                    Ok(Some(Command::Connect(peer))) => {
                        if let Err(error) = client.connect_to_peer(&peer) {
                            output.error(&error.to_string());
                        }
                    }
                    Ok(Some(Command::Close(peer))) => {
                        if let Err(error) = client.close_peer(&peer) {
                            output.error(&error.to_string());
                        }
                    }
                    Ok(Some(Command::Room(command))) => room_command(&client, &output, command),
                    Ok(Some(Command::Send { peer, text })) => {
                        let result = client.try_send_message(&peer, &text);
                        // `sent` means kept: a store has it before this is printed.
                        client.stored().await;
                        output.sent(&peer, &result);
                    }
                    Ok(Some(Command::Watch(peer))) => {
                        if let Err(error) = client.watch_presence(&peer) {
                            output.error(&error.to_string());
                        }
                    }
                    Ok(Some(Command::Unwatch(peer))) => client.unwatch_presence(&peer),
                    Ok(Some(Command::Verify(peer))) => match client.mark_verified(&peer) {
                        Ok(()) => {}
                        Err(error) => output.error(&error.to_string()),
                    },
                    Ok(Some(Command::SendFile { peer, path })) => match std::fs::read(&path) {
                        Ok(data) => {
                            let name = std::path::Path::new(&path)
                                .file_name()
                                .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
                            let mime = "application/octet-stream";
                            let result = client.send_file(&peer, &name, mime, &data);
                            client.stored().await;
                            output.sent(&peer, &result);
                        }
                        Err(error) => output.error(&format!("cannot read {path}: {error}")),
                    },
                    Err(message) => output.error(&message),
                }
            }
            event = events.next() => match event {
                Some(event) => {
                    if let (true, ClientEvent::Message { from, text }) = (flags.echo, &event) {
                        client.send_message(from, text);
                    }
                    output.event(&event);
                }
                None => break,
            },
        }
    }
    client.disconnect().await;
    ExitCode::SUCCESS
}

/// Carries out a `/room` command; what follows arrives as `room_*` events.
fn room_command(client: &Client, output: &Output, command: RoomCommand) {
    let room_id = |text: &str| {
        RoomId::parse(text).ok_or_else(|| format!("`{text}` is not a room id (32 hex digits)"))
    };
    let result = match command {
        RoomCommand::Create(name) => client
            .create_room(&name)
            .map(drop)
            .map_err(|e| e.to_string()),
        RoomCommand::Invite { room, peer } => {
            room_id(&room).and_then(|room| client.invite(&room, &peer).map_err(|e| e.to_string()))
        }
        RoomCommand::Send { room, text } => room_id(&room).map(|id| {
            let result = client.send_room_message(&id, &text);
            output.room_sent(&id, &result);
        }),
        RoomCommand::Picture { room, path } => room_id(&room).and_then(|id| {
            let data = std::fs::read(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let name = std::path::Path::new(&path)
                .file_name()
                .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
            let mime = peerchat_core::protocol::media_type_of_name(&name);
            let result = client.send_room_picture(&id, &name, mime, &data);
            output.room_sent(&id, &result);
            Ok(())
        }),
        RoomCommand::Remove { room, peer } => room_id(&room).and_then(|room| {
            client
                .remove_from_room(&room, &peer)
                .map_err(|e| e.to_string())
        }),
        RoomCommand::Admin { room, peer } => room_id(&room).and_then(|room| {
            client
                .make_room_admin(&room, &peer)
                .map_err(|e| e.to_string())
        }),
        RoomCommand::Leave(room) => {
            room_id(&room).and_then(|room| client.leave_room(&room).map_err(|e| e.to_string()))
        }
    };
    if let Err(message) = result {
        output.error(&message);
    }
}

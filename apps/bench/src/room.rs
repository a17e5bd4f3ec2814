//! `peerchat-bench room`: a group room of native clients on loopback: the time from cold
//! (nobody connected) until every member holds a chat with every other, and the time a
//! room message takes to reach every other member.
//!
//! All members are clients in this process, each with its own identity key, against the
//! peerchat-server the benchmark starts. The creator first chats with each member (an
//! invitation needs the invitee's key), invites them all, and the members connect to each
//! other by themselves.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use peerchat_core::{Client, ClientEvent, ClientOptions, PeerStatus};
use tokio::sync::mpsc;

use crate::broker_process::BrokerKind;
use crate::stats::Summary;

/// Measure a group room's forming and its message delivery.
#[derive(Debug, clap::Args)]
pub struct RoomFlags {
    /// Members of the room, the creator included (at most 32).
    #[arg(long, default_value_t = 16)]
    members: usize,
    /// Room messages to time, written in turn by each member.
    #[arg(long, default_value_t = 100)]
    messages: usize,
}

/// How long the room may take to form, or one message to reach everyone.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// One member's event, tagged with the member's index.
type Tagged = (usize, ClientEvent);

pub async fn run(flags: RoomFlags) -> anyhow::Result<()> {
    ensure!(
        (2..=32).contains(&flags.members),
        "--members must be 2 to 32"
    );
    let broker = BrokerKind::Peerchat.start().await?;
    let keys = KeyDir::new()?;
    let run = std::process::id();
    let names: Vec<String> = (0..flags.members)
        .map(|i| format!("room{run}-{i}"))
        .collect();
    let (tx, mut events) = mpsc::unbounded_channel::<Tagged>();
    let mut members = Vec::with_capacity(flags.members);
    for (i, name) in names.iter().enumerate() {
        let mut options = ClientOptions::new(broker.url(), name);
        options.bind_addrs = vec!["127.0.0.1:0".to_owned()];
        options.mdns = false;
        options.identity_file = Some(keys.0.join(format!("{name}.key")));
        let (client, mut stream) = Client::connect_with(options)
            .await
            .with_context(|| format!("{name} could not join"))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                if tx.send((i, event)).is_err() {
                    break;
                }
            }
        });
        members.push(client);
    }

    // Cold: nobody has a chat. The creator meets each member, then invites them all.
    let started = Instant::now();
    let creator = &members[0];
    for name in &names[1..] {
        creator.connect_to_peer(name)?;
    }
    let mut met = HashSet::new();
    wait_until(&mut events, |event| {
        if let Some((0, ClientEvent::PeerConnected(peer))) = event {
            met.insert(peer.clone());
        }
        met.len() == names.len() - 1
    })
    .await
    .context("the creator meeting every member")?;
    let room = creator.create_room("bench")?;
    for name in &names[1..] {
        creator.invite(&room, name)?;
    }
    // Formed: every member counts all members, and holds an open chat with each of them.
    let mut counted = HashSet::new();
    wait_until(&mut events, |event| {
        if let Some((i, ClientEvent::RoomMembers { members: now, .. })) = event
            && now.len() == names.len()
        {
            counted.insert(*i);
        }
        counted.len() == names.len() && mesh_complete(&members, &names)
    })
    .await
    .context("the room forming")?;
    let formed = started.elapsed();

    let mut reach = Vec::with_capacity(flags.messages);
    for n in 0..flags.messages {
        let author = n % members.len();
        let text = format!("room message {n}");
        let sent = Instant::now();
        members[author].send_room_message(&room, &text)?;
        let mut reached = HashSet::new();
        wait_until(&mut events, |event| {
            if let Some((i, ClientEvent::RoomMessage { text: got, .. })) = event
                && *got == text
            {
                reached.insert(*i);
            }
            reached.len() == names.len() - 1
        })
        .await
        .with_context(|| format!("message {n} reaching every member"))?;
        reach.push(sent.elapsed());
    }

    let reach = Summary::of(&reach);
    println!(
        "room of {}: formed from cold in {:.0} ms",
        names.len(),
        formed.as_secs_f64() * 1000.0
    );
    reach.print_row("message reaches all");
    println!(
        "{}",
        serde_json::json!({
            "members": names.len(),
            "formed_ms": formed.as_secs_f64() * 1000.0,
            "messages": flags.messages,
            "reach_all_median_ms": reach.median_ms(),
            "reach_all_p99_ms": reach.p99_ms(),
        })
    );
    for member in members {
        member.disconnect().await;
    }
    Ok(())
}

/// Whether every member's chat with every other member is open.
fn mesh_complete(members: &[Client], names: &[String]) -> bool {
    members.iter().enumerate().all(|(i, member)| {
        (names.iter().enumerate())
            .filter(|(j, _)| *j != i)
            .all(|(_, name)| member.peer_status(name) == Some(PeerStatus::Connected))
    })
}

/// Reads events until `done` says so. `done` sees each event, and `None` every 100 ms
/// without one, since the mesh's state is read from the clients rather than from events.
async fn wait_until(
    events: &mut mpsc::UnboundedReceiver<Tagged>,
    mut done: impl FnMut(Option<&Tagged>) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let mut errors: HashMap<usize, String> = HashMap::new();
    loop {
        let event = tokio::select! {
            event = events.recv() => Some(event.context("the clients stopped")?),
            () = tokio::time::sleep(Duration::from_millis(100)) => None,
            () = tokio::time::sleep_until(deadline) => {
                bail!("timed out after {STEP_TIMEOUT:?}; errors by member: {errors:?}")
            }
        };
        if let Some((i, ClientEvent::Error(error))) = &event {
            errors.insert(*i, error.to_string());
        }
        if done(event.as_ref()) {
            return Ok(());
        }
    }
}

/// The members' identity keys, in a directory removed afterwards.
struct KeyDir(PathBuf);

impl KeyDir {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("peerchat-bench-room-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

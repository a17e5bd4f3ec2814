//! Peer connections on native: webrtc-rs, one task per connection.
//!
//! Each connection's task executes its commands strictly in order (remote description
//! before candidates), and forwards the library's callbacks to the driver without blocking.

use std::net::IpAddr;

use bytes::BytesMut;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::RTCIceTransportPolicy;
use rtc::peer_connection::transport::RTCDtlsRole;
use tracing::{debug, warn};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelState};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, RTCStatsReportEntry, SettingEngineBuilder, StatsSelector,
};
use webrtc::runtime::Runtime;

use super::local_names::{self, LocalNames, NamedCandidate};
use super::sockets::RoomySockets;
use crate::backend::{Connections, PeerCommand, TaskAlive};
use crate::client::{Input, InputSender};
use crate::event::PeerStatus;
use crate::machine::{ConnId, SEND_BUFFER_LOW, TransportEvent};
use crate::options::ClientOptions;
use crate::path::{PATH_REPORT_INTERVAL, PathKind, PeerPath};
use crate::protocol::IceCandidate;

/// The label of the chat data channel, as the original client names it.
const CHAT_LABEL: &str = "chat";

/// Interval between ICE connectivity checks while checking. Besides pacing the checks, the
/// agent's tick is the only timer that runs the core's `handle_timeout` during setup, and two
/// setup steps wait for it: the controlling agent sends its nomination on its next tick, and the
/// DTLS ClientHello, queued inside the DTLS endpoint when ICE connects (rtc 0.21.1
/// `handler/dtls.rs`, `handle_event`), is only drained by `handle_timeout`. The library's
/// 200 ms default therefore costs ~0.4 s per setup, 20 ms ~40 ms; 2 ms (the driver's tokio timer
/// rounds it up to ~2 ms) costs ~4 ms. The price is check traffic while checking (every pair
/// is pinged every tick): on a LAN that phase lasts about a millisecond.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(2);
/// Checks per candidate pair before it is given up: ~1 s at the interval above, as before.
const ICE_MAX_BINDING_REQUESTS: u16 = 500;

/// How often the offerer pokes the library's driver while its chat channel is opening.
///
/// webrtc 0.21.1's driver loop (`peer_connection/driver.rs`, `event_loop`) flushes the core's
/// packets at the top of each pass, *then* pumps events, then sleeps until the next socket
/// read, command or timer. Packets queued while handling an event are not sent until
/// something else wakes it: the SCTP INIT queued when DTLS completes (rtc
/// `handler/sctp.rs`, `handle_event`) and the DCEP DATA_CHANNEL_OPEN queued when SCTP is
/// established (rtc `handler/datachannel.rs`, `SCTPHandshakeComplete`). Once ICE is connected
/// the next timer is the agent's 200 ms tick (rtc-ice `get_timeout_interval` never exceeds its
/// `DEFAULT_CHECK_INTERVAL`), so each of those stalls cost ~200 ms: ~0.4 s per setup. Any
/// data-channel call that reaches the core wakes the driver (`wake_writes`), which flushes
/// what is queued; re-setting the channel's buffered-amount-low threshold to its current value
/// is such a call with no other effect. The INIT is poked as soon as we learn that DTLS is
/// done (`Connected`); the DCEP OPEN has no callback, hence this interval. The answerer needs
/// no poke: as DTLS and SCTP server it only ever answers packets, and replies to a read are
/// flushed at once. Drop all this once the driver flushes after pumping events.
const SETUP_NUDGE_INTERVAL: Duration = Duration::from_millis(1);

/// How long after the answer the offerer keeps poking: the whole ICE/DTLS/SCTP/DCEP setup on
/// a slow path. Past it, setup still completes, on the library's own timers.
const SETUP_NUDGE_WINDOW: Duration = Duration::from_secs(10);

/// How long a closing connection waits for what it sent last (a `bye`) to be delivered:
/// without it the peer takes the chat for one being moved and waits out its recovery
/// window. 300 ms once lost a `bye` on a loaded 2-core machine; leaving waits only until
/// the chat channel has closed, and within the backend's 2 s grace for closing.
const CLOSE_FLUSH: Duration = Duration::from_millis(1500);

pub(crate) struct Transport {
    settings: Arc<Settings>,
    inputs: InputSender,
    connections: Connections,
    /// The runtime the client was made on: commands may arrive on any thread (the app's,
    /// or the network watcher's), and a connection's task must start on this runtime.
    tasks: tokio::runtime::Handle,
}

/// What every peer connection of this client is built with.
struct Settings {
    ice_servers: Vec<RTCIceServer>,
    bind_addrs: Vec<String>,
    mdns: bool,
    relay_only: bool,
    /// What browsers' `.local` names resolved to, learnt from earlier connections.
    local_names: LocalNames,
    /// Tokio, with roomy UDP socket buffers (see `sockets`); `None` outside Tokio.
    runtime: Option<Arc<dyn Runtime>>,
}

/// What one connection's task keeps between commands.
#[derive(Default)]
struct Session {
    chat: Option<Arc<dyn DataChannel>>,
    /// Bytes of file chunks written to the chat channel, for `SendBufferLow` reports.
    chunk_bytes: Arc<AtomicU64>,
    /// The remote candidates that named their host instead of giving an address.
    named: Vec<NamedCandidate>,
}

impl Transport {
    pub fn new(options: &ClientOptions, inputs: InputSender) -> Self {
        let ice_servers = options
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect();
        let settings = Settings {
            ice_servers,
            bind_addrs: options.bind_addrs.clone(),
            mdns: options.mdns,
            relay_only: options.relay_only,
            local_names: LocalNames::default(),
            runtime: RoomySockets::runtime(),
        };
        Self {
            settings: Arc::new(settings),
            inputs,
            connections: Connections::default(),
            tasks: tokio::runtime::Handle::current(),
        }
    }

    /// Hands `command` to the connection's task, starting the task for a new connection.
    pub fn execute(&mut self, conn: ConnId, command: PeerCommand) {
        let (settings, inputs, tasks) = (&self.settings, &self.inputs, &self.tasks);
        self.connections.execute(conn, command, |commands, alive| {
            tasks.spawn(run_connection(
                conn,
                settings.clone(),
                inputs.clone(),
                commands,
                alive,
            ));
        });
    }

    /// Ends every connection and waits for them to close.
    pub async fn closed(self) {
        self.connections.closed().await;
    }
}

/// Forwards the library's callbacks for one connection to the driver.
struct Handler {
    conn: ConnId,
    inputs: InputSender,
    channels: mpsc::UnboundedSender<Arc<dyn DataChannel>>,
    /// Asks the connection's task to wake the driver (see [`SETUP_NUDGE_INTERVAL`]).
    kicks: mpsc::UnboundedSender<()>,
}

impl Handler {
    fn report(&self, event: TransportEvent) {
        self.inputs.send(Input::Transport(self.conn, event));
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => self.report(TransportEvent::LocalCandidate(IceCandidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
                username_fragment: init.username_fragment,
            })),
            Err(error) => warn!(%error, "local candidate could not be serialised"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let status = match state {
            RTCPeerConnectionState::New => PeerStatus::New,
            RTCPeerConnectionState::Connecting => PeerStatus::Connecting,
            RTCPeerConnectionState::Connected => PeerStatus::Connected,
            RTCPeerConnectionState::Disconnected => PeerStatus::Disconnected,
            RTCPeerConnectionState::Failed => PeerStatus::Failed,
            RTCPeerConnectionState::Closed => PeerStatus::Closed,
            _ => return,
        };
        if status == PeerStatus::Connected {
            // DTLS is done: the SCTP INIT is queued and waits for the driver to wake, and the
            // selected pair tells where the peer's `.local` name lives.
            let _ = self.kicks.unbounded_send(());
        }
        self.report(TransportEvent::StateChanged(status));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.channels.unbounded_send(channel);
    }
}

async fn build(
    settings: &Settings,
    handler: Handler,
) -> webrtc::error::Result<impl PeerConnection + use<>> {
    let mdns = if settings.mdns {
        MulticastDnsMode::QueryOnly
    } else {
        MulticastDnsMode::Disabled
    };
    let setting_engine = SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
        // A check that arrives before its candidate (peer-reflexive) is the normal case on
        // a fast LAN; the default makes it wait a second.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_host_acceptance_min_wait(Some(Duration::ZERO))
        // The answerer waits for the offerer's ClientHello rather than starting a second
        // handshake race.
        .with_answering_dtls_role(RTCDtlsRole::Server)
        // An ICE restart follows a network change: gather from fresh sockets on the
        // interfaces there are now, not from the ones bound to an address that is gone.
        .with_discard_local_candidates_during_ice_restart(true)
        .with_multicast_dns_mode(mdns)
        .build();
    let policy = if settings.relay_only {
        RTCIceTransportPolicy::Relay
    } else {
        RTCIceTransportPolicy::All
    };
    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(settings.ice_servers.clone())
        .with_ice_transport_policy(policy)
        .build();
    let mut builder = PeerConnectionBuilder::new();
    if let Some(runtime) = &settings.runtime {
        builder = builder.with_runtime(runtime.clone());
    }
    builder
        .with_configuration(configuration)
        .with_setting_engine(setting_engine)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(settings.bind_addrs.clone())
        .build()
        .await
}

/// Owns one peer connection until its command channel closes.
async fn run_connection(
    conn: ConnId,
    settings: Arc<Settings>,
    inputs: InputSender,
    mut commands: mpsc::UnboundedReceiver<PeerCommand>,
    _alive: TaskAlive,
) {
    let report = |event: TransportEvent| {
        inputs.send(Input::Transport(conn, event));
    };
    let (channels_tx, mut channels) = mpsc::unbounded();
    let (kicks_tx, mut kicks) = mpsc::unbounded();
    let handler = Handler {
        conn,
        inputs: inputs.clone(),
        channels: channels_tx,
        kicks: kicks_tx,
    };
    let pc = match build(&settings, handler).await {
        Ok(pc) => pc,
        Err(error) => {
            report(TransportEvent::Failed(format!(
                "could not create a peer connection: {error}"
            )));
            return;
        }
    };
    let mut session = Session::default();
    // Until when the driver is poked while our chat channel opens (see SETUP_NUDGE_INTERVAL).
    let mut nudge_until: Option<tokio::time::Instant> = None;
    // While connected, the path is reported at this interval (the first report at once).
    let mut path_reports: Option<tokio::time::Interval> = None;
    loop {
        let nudge = async {
            match nudge_until {
                Some(_) => tokio::time::sleep(SETUP_NUDGE_INTERVAL).await,
                None => futures::future::pending().await,
            }
        };
        let path_due = async {
            match path_reports.as_mut() {
                Some(interval) => interval.tick().await,
                None => futures::future::pending().await,
            }
        };
        futures::select! {
            command = commands.next() => {
                let Some(command) = command else { break };
                let answered = matches!(command, PeerCommand::Answer(_));
                let candidate = matches!(command, PeerCommand::Candidate(_));
                if let Err(reason) = execute(&pc, &mut session, &settings, command, conn, &inputs).await {
                    report(TransportEvent::Failed(reason));
                    break;
                }
                if answered && session.chat.is_some() {
                    nudge_until = Some(tokio::time::Instant::now() + SETUP_NUDGE_WINDOW);
                }
                if candidate {
                    wake_for_candidate(&pc).await;
                }
            }
            kick = kicks.next() => {
                if kick.is_none() {
                    continue;
                }
                if let Some(channel) = &session.chat {
                    nudge_driver(channel.as_ref()).await;
                }
                learn_local_names(&pc, &session.named, &settings.local_names).await;
                path_reports.get_or_insert_with(|| tokio::time::interval(PATH_REPORT_INTERVAL));
            }
            _ = path_due.fuse() => {
                match read_path(&pc).await {
                    Some(path) => report(TransportEvent::Path(path)),
                    // No selected pair any more: the path is lost, stop until it is back.
                    None => path_reports = None,
                }
            }
            _ = nudge.fuse() => {
                let opening = match (&session.chat, nudge_until) {
                    (Some(channel), Some(until)) if tokio::time::Instant::now() < until => {
                        nudge_driver(channel.as_ref()).await
                    }
                    _ => false,
                };
                if !opening {
                    nudge_until = None;
                }
            }
            channel = channels.next().fuse() => {
                let Some(channel) = channel else { continue };
                if channel.label().await.as_deref() == Ok(CHAT_LABEL) {
                    // The library hands over remote channels already open.
                    report(TransportEvent::ChannelOpen);
                    adopt_chat(channel, &mut session, conn, &inputs).await;
                } else {
                    debug!(conn, "ignoring a data channel that is not `chat`");
                }
            }
        }
    }
    // What was sent last (a `bye`) reaches the peer before the connection goes, if the
    // path allows.
    if let Some(channel) = &session.chat {
        flush(channel.as_ref()).await;
    }
    if let Err(error) = pc.close().await {
        debug!(conn, %error, "closing the peer connection");
    }
}

/// Waits, at most [`CLOSE_FLUSH`], until the peer has everything sent on `channel`, and
/// closes the channel.
///
/// First until SCTP has released what was handed to the channel: a close before that can
/// overtake messages the library has not yet packetized, and they are lost. Then the channel
/// is closed as a browser closes it, and waited for: SCTP resets its stream behind
/// whatever it still holds, and the peer's end closes only once it has handed that over.
/// Both are needed. The library counts the channel's own opening message against what the
/// application sent, so just after the channel opens `outstanding_bytes` can read zero while
/// a `bye` is still on its way; and closing the connection without resetting the stream
/// aborts the association, which makes the peer drop what it received just before.
async fn flush(channel: &dyn DataChannel) {
    let give_up = tokio::time::Instant::now() + CLOSE_FLUSH;
    let released = async {
        while !matches!(channel.outstanding_bytes().await, Ok(0) | Err(_)) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The library marks the channel closed at once; it forgets the channel (and
        // `ready_state` fails) once SCTP has reset the stream.
        if channel.close().await.is_ok() {
            while channel.ready_state().await.is_ok() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let _ = tokio::time::timeout_at(give_up, released).await;
}

/// Wakes the library's driver after a remote candidate was added.
///
/// The ICE agent asks for an immediate check of the new pairs, but webrtc 0.21.1's
/// `add_ice_candidate` does not wake the driver (`peer_connection/mod.rs`), so the check waits
/// for the next tick; on the answerer, whose first candidate arrives just after the offer, that
/// delays every setup by one tick. Re-applying the current configuration is the only
/// connection-level call that wakes it: the core checks and stores the same values, the driver
/// keeps them for the next gathering.
async fn wake_for_candidate(pc: &impl PeerConnection) {
    let configuration = pc.get_configuration().await;
    if let Err(error) = pc.set_configuration(configuration).await {
        debug!(%error, "could not wake the driver for a new candidate");
    }
}

/// Wakes the library's driver so it sends what it has queued, if `channel` is still opening.
/// Returns whether it is.
async fn nudge_driver(channel: &dyn DataChannel) -> bool {
    if !matches!(
        channel.ready_state().await,
        Ok(RTCDataChannelState::Connecting)
    ) {
        return false;
    }
    match channel.buffered_amount_low_threshold().await {
        Ok(threshold) => channel
            .set_buffered_amount_low_threshold(threshold)
            .await
            .is_ok(),
        Err(_) => false,
    }
}

/// Executes one command; an `Err` means the connection is unusable.
async fn execute(
    pc: &impl PeerConnection,
    session: &mut Session,
    settings: &Settings,
    command: PeerCommand,
    conn: ConnId,
    inputs: &InputSender,
) -> Result<(), String> {
    let report = |event: TransportEvent| {
        inputs.send(Input::Transport(conn, event));
    };
    match command {
        PeerCommand::Offer => {
            let channel = pc
                .create_data_channel(CHAT_LABEL, None)
                .await
                .map_err(|e| format!("could not create the chat channel: {e}"))?;
            adopt_chat(channel, session, conn, inputs).await;
            let offer = pc
                .create_offer(None)
                .await
                .map_err(|e| format!("could not create an offer: {e}"))?;
            pc.set_local_description(offer.clone())
                .await
                .map_err(|e| format!("could not apply our offer: {e}"))?;
            report(TransportEvent::LocalDescription(offer.sdp));
        }
        PeerCommand::RestartIce => {
            pc.restart_ice()
                .await
                .map_err(|e| format!("could not restart ICE: {e}"))?;
            let offer = pc
                .create_offer(None)
                .await
                .map_err(|e| format!("could not create an ICE restart offer: {e}"))?;
            pc.set_local_description(offer.clone())
                .await
                .map_err(|e| format!("could not apply our ICE restart offer: {e}"))?;
            report(TransportEvent::LocalDescription(offer.sdp));
        }
        PeerCommand::Accept(sdp) => {
            let offer = RTCSessionDescription::offer(sdp).map_err(|e| format!("bad offer: {e}"))?;
            pc.set_remote_description(offer)
                .await
                .map_err(|e| format!("could not apply the offer: {e}"))?;
            let answer = pc
                .create_answer(None)
                .await
                .map_err(|e| format!("could not create an answer: {e}"))?;
            pc.set_local_description(answer.clone())
                .await
                .map_err(|e| format!("could not apply our answer: {e}"))?;
            report(TransportEvent::LocalDescription(answer.sdp));
        }
        PeerCommand::Answer(sdp) => {
            let answer =
                RTCSessionDescription::answer(sdp).map_err(|e| format!("bad answer: {e}"))?;
            pc.set_remote_description(answer)
                .await
                .map_err(|e| format!("could not apply the answer: {e}"))?;
        }
        PeerCommand::Candidate(candidate) => {
            let named = local_names::named_candidate(&candidate.candidate);
            let known = named.as_ref().and_then(|named| {
                let ip = settings
                    .local_names
                    .address_of(&named.name, Instant::now())?;
                Some(local_names::with_address(&candidate.candidate, ip))
            });
            // The learnt address first, so checks start before the name resolves.
            for line in known.into_iter().chain([candidate.candidate.clone()]) {
                add_remote_candidate(pc, conn, &candidate, line).await;
            }
            session.named.extend(named);
        }
        // `Transport::execute` ends the task instead of forwarding a close.
        PeerCommand::Close => {}
        PeerCommand::Send(text) => match &session.chat {
            Some(channel) => {
                if let Err(error) = channel.send_text(&text).await {
                    warn!(conn, %error, "send failed");
                    return Err(format!("could not send on the chat channel: {error}"));
                }
            }
            None => warn!(conn, "send before the chat channel exists"),
        },
        PeerCommand::SendData(data) => match &session.chat {
            Some(channel) => {
                if let Err(error) = channel.send(BytesMut::from(&data[..])).await {
                    warn!(conn, %error, "send failed");
                    return Err(format!("could not send on the chat channel: {error}"));
                }
                session.chunk_bytes.fetch_add(data.len() as u64, Relaxed);
                // A buffer that drains as fast as it fills never crosses the low mark
                // from above, so the library's event would never come: say so here.
                if let Some(low) = send_buffer_low(channel.as_ref(), &session.chunk_bytes).await {
                    report(low);
                }
            }
            None => warn!(conn, "send before the chat channel exists"),
        },
    }
    Ok(())
}

/// Hands the agent one remote candidate line, with the rest of `candidate`'s fields.
async fn add_remote_candidate(
    pc: &impl PeerConnection,
    conn: ConnId,
    candidate: &IceCandidate,
    line: String,
) {
    let init = RTCIceCandidateInit {
        candidate: line,
        sdp_mid: candidate.sdp_mid.clone(),
        sdp_mline_index: candidate.sdp_mline_index,
        username_fragment: candidate.username_fragment.clone(),
        ..Default::default()
    };
    // One bad candidate does not doom the connection: others may work.
    if let Err(error) = pc.add_ice_candidate(init).await {
        debug!(conn, %error, "remote candidate refused");
    }
}

/// How the connection runs: the selected candidate pair's types, and the round-trip time
/// ICE last measured on it. `None` while no pair is selected.
async fn read_path(pc: &impl PeerConnection) -> Option<PeerPath> {
    let sctp = pc.sctp().await?;
    let pair = sctp
        .transport()
        .ice_transport()
        .get_selected_candidate_pair()
        .await
        .ok()??;
    let (local, remote) = (pair.local(), pair.remote());
    let kind = PathKind::classify(
        &local.typ.to_string(),
        &remote.typ.to_string(),
        remote.address.parse().ok(),
    );
    let stats = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let rtt_ms = stats.iter().find_map(|entry| match entry {
        RTCStatsReportEntry::IceCandidatePair(pair)
            if pair.nominated && pair.current_round_trip_time > 0.0 =>
        {
            Some(pair.current_round_trip_time * 1000.0)
        }
        _ => None,
    });
    Some(PeerPath { kind, rtt_ms })
}

/// Learns where the peer's `.local` names live from the pair ICE selected: a remote address
/// on the port of a named candidate is that name's address (see [`local_names`]).
async fn learn_local_names(pc: &impl PeerConnection, named: &[NamedCandidate], names: &LocalNames) {
    if named.is_empty() {
        return;
    }
    let Some(sctp) = pc.sctp().await else { return };
    let ice = sctp.transport().ice_transport();
    let Ok(Some(pair)) = ice.get_selected_candidate_pair().await else {
        return;
    };
    let remote = pair.remote();
    let Ok(ip) = remote.address.parse::<IpAddr>() else {
        return;
    };
    for candidate in named.iter().filter(|c| c.port == remote.port) {
        debug!(name = %candidate.name, %ip, "learnt where an mDNS name lives");
        names.learn(&candidate.name, ip, Instant::now());
    }
}

/// Makes `channel` the connection's chat channel: its events are forwarded, and its send
/// buffer reports when it drains to the machine's low mark.
async fn adopt_chat(
    channel: Arc<dyn DataChannel>,
    session: &mut Session,
    conn: ConnId,
    inputs: &InputSender,
) {
    if let Err(error) = channel
        .set_buffered_amount_low_threshold(SEND_BUFFER_LOW)
        .await
    {
        debug!(conn, %error, "could not set the send buffer's low mark");
    }
    let chunk_bytes = session.chunk_bytes.clone();
    tokio::spawn(pump(channel.clone(), conn, chunk_bytes, inputs.clone()));
    session.chat = Some(channel);
}

/// A `SendBufferLow` report if the channel's send buffer is at or below the low mark.
async fn send_buffer_low(
    channel: &dyn DataChannel,
    chunk_bytes: &AtomicU64,
) -> Option<TransportEvent> {
    let buffered = channel.outstanding_bytes().await.ok()? as u64;
    (buffered <= u64::from(SEND_BUFFER_LOW)).then(|| TransportEvent::SendBufferLow {
        buffered,
        chunk_bytes: chunk_bytes.load(Relaxed),
    })
}

/// Forwards a data channel's events to the driver until it closes.
async fn pump(
    channel: Arc<dyn DataChannel>,
    conn: ConnId,
    chunk_bytes: Arc<AtomicU64>,
    inputs: InputSender,
) {
    let report = |event: TransportEvent| {
        inputs.send(Input::Transport(conn, event));
    };
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnOpen => report(TransportEvent::ChannelOpen),
            DataChannelEvent::OnBufferedAmountLow => {
                if let Some(low) = send_buffer_low(channel.as_ref(), &chunk_bytes).await {
                    report(low);
                }
            }
            DataChannelEvent::OnMessage(message) if message.is_string => {
                let text = String::from_utf8_lossy(&message.data).into_owned();
                report(TransportEvent::ChannelMessage(text));
            }
            DataChannelEvent::OnMessage(message) => {
                report(TransportEvent::ChannelData(message.data.to_vec()));
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    report(TransportEvent::ChannelClosed);
}

//! Peer connections in the browser: `RTCPeerConnection` and the `chat` `RTCDataChannel`,
//! one task per connection executing its commands strictly in order.
//!
//! Every JS callback is owned by the connection's (or channel's) struct and detached when it
//! is dropped, so a closed chat leaves nothing behind.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt, select_biased};
use js_sys::{ArrayBuffer, JSON, Uint8Array};
use tracing::{debug, warn};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Event, MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit,
    RtcDataChannelState, RtcDataChannelType, RtcIceCandidate, RtcIceCandidateInit, RtcIceServer,
    RtcIceTransportPolicy, RtcOfferOptions, RtcPeerConnection, RtcPeerConnectionIceEvent,
    RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

use super::{describe_js_error, rt, stats};
use crate::backend::{Connections, PeerCommand, TaskAlive};
use crate::client::{Input, InputSender};
use crate::event::PeerStatus;
use crate::machine::{ConnId, SEND_BUFFER_LOW, TransportEvent};
use crate::options::{ClientOptions, IceServer};
use crate::path::PATH_REPORT_INTERVAL;
use crate::protocol::IceCandidate;

/// The label of the chat data channel, as the original client names it.
const CHAT_LABEL: &str = "chat";

pub(crate) struct Transport {
    configuration: RtcConfiguration,
    inputs: InputSender,
    connections: Connections,
    chats: HashMap<ConnId, ChatSlot>,
}

/// A connection's `chat` channel once it exists. The connection's task fills it (for the
/// peer's channel, in the `datachannel` event itself) before the channel is reported open,
/// so every send the machine makes finds it; sends go straight to the channel instead of
/// through the task, a hop that costs a browser round trip a measurable share.
type ChatSlot = Rc<RefCell<Option<ChatChannel>>>;

impl Transport {
    pub fn new(options: &ClientOptions, inputs: InputSender) -> Self {
        Self {
            configuration: configuration(&options.ice_servers, options.relay_only),
            inputs,
            connections: Connections::default(),
            chats: HashMap::new(),
        }
    }

    /// Sends on the chat channel at once, or hands `command` to the connection's task,
    /// starting the task for a new connection.
    pub fn execute(&mut self, conn: ConnId, command: PeerCommand) {
        let reporter = Reporter {
            conn,
            inputs: self.inputs.clone(),
        };
        match command {
            PeerCommand::Send(text) => return self.send(&reporter, |chat| chat.send(&text)),
            PeerCommand::SendData(data) => {
                return self.send(&reporter, |chat| chat.send_data(&data));
            }
            PeerCommand::Close => drop(self.chats.remove(&conn)),
            _ => {}
        }
        let (configuration, chats) = (&self.configuration, &mut self.chats);
        self.connections.execute(conn, command, |commands, alive| {
            let chat = ChatSlot::default();
            chats.insert(conn, chat.clone());
            super::rt::spawn(run_connection(
                reporter,
                configuration.clone(),
                chat,
                commands,
                alive,
            ));
        });
    }

    /// A send that fails makes the connection unusable, as any other failed command does.
    fn send(&self, reporter: &Reporter, send: impl FnOnce(&ChatChannel) -> Result<(), String>) {
        let chat = self.chats.get(&reporter.conn).map(|slot| slot.borrow());
        match chat.as_ref().and_then(|chat| chat.as_ref()) {
            Some(chat) => {
                if let Err(reason) = send(chat) {
                    reporter.report(TransportEvent::Failed(reason));
                }
            }
            None => warn!(conn = reporter.conn, "send before the chat channel exists"),
        }
    }

    /// Ends every connection and waits for them to close.
    pub async fn closed(self) {
        self.connections.closed().await;
    }
}

/// Sends one connection's events to the driver.
#[derive(Clone)]
struct Reporter {
    conn: ConnId,
    inputs: InputSender,
}

impl Reporter {
    fn report(&self, event: TransportEvent) {
        self.inputs.send(Input::Transport(self.conn, event));
    }
}

/// Owns one peer connection until its command channel closes.
async fn run_connection(
    reporter: Reporter,
    configuration: RtcConfiguration,
    chat: ChatSlot,
    mut commands: mpsc::UnboundedReceiver<PeerCommand>,
    _alive: TaskAlive,
) {
    let peer = match PeerLink::open(&configuration, &reporter, chat.clone()) {
        Ok(peer) => peer,
        Err(reason) => {
            reporter.report(TransportEvent::Failed(reason));
            return;
        }
    };
    // The path is read on a timer: often until ICE has selected a pair (so a new chat shows
    // its path at once), then at the report interval.
    let mut path_due = Box::pin(rt::sleep(PATH_REPORT_INTERVAL / 8).fuse());
    loop {
        select_biased! {
            () = path_due => {
                let path = stats::read_path(&peer.pc).await;
                let next = match path {
                    Some(path) => {
                        reporter.report(TransportEvent::Path(path));
                        PATH_REPORT_INTERVAL
                    }
                    None => PATH_REPORT_INTERVAL / 8,
                };
                path_due = Box::pin(rt::sleep(next).fuse());
            }
            command = commands.next() => {
                let Some(command) = command else { break };
                if let Err(reason) = execute(&peer.pc, &chat, command, &reporter).await {
                    reporter.report(TransportEvent::Failed(reason));
                    break;
                }
            }
        }
    }
    // What was sent last (a `bye`) leaves before the connection goes, if the path allows.
    let channel = chat.borrow().as_ref().map(|c| c.channel.clone());
    if let Some(channel) = channel {
        flush(&channel).await;
    }
    // The channel detaches its callbacks before the connection closes under it.
    drop(chat.take());
    drop(peer);
}

/// How long a closing connection waits for what it sent last to reach the peer.
const CLOSE_FLUSH: Duration = Duration::from_millis(300);

/// Waits, at most [`CLOSE_FLUSH`], until the browser has handed everything sent on `channel`
/// to the network, then closes the channel and waits for it to close: the browser resets
/// the channel's stream behind what it sent, and the peer's end closes only once it has
/// handed that over. Closing the connection instead aborts the association, and a peer can
/// drop what it received just before (as the native transport's `flush` explains).
async fn flush(channel: &RtcDataChannel) {
    if channel.ready_state() != RtcDataChannelState::Open {
        return;
    }
    let started = rt::Clock::new();
    let in_time = || started.now() < CLOSE_FLUSH.as_millis() as u64;
    while channel.buffered_amount() > 0 && in_time() {
        rt::sleep(Duration::from_millis(5)).await;
    }
    channel.close();
    while channel.ready_state() != RtcDataChannelState::Closed && in_time() {
        rt::sleep(Duration::from_millis(5)).await;
    }
}

/// Executes one command; an `Err` means the connection is unusable.
async fn execute(
    pc: &RtcPeerConnection,
    chat: &ChatSlot,
    command: PeerCommand,
    reporter: &Reporter,
) -> Result<(), String> {
    match command {
        PeerCommand::Offer => {
            let init = RtcDataChannelInit::new();
            init.set_ordered(true);
            let channel = pc.create_data_channel_with_data_channel_dict(CHAT_LABEL, &init);
            chat.replace(Some(ChatChannel::attach(channel, reporter.clone())));
            let offer = call(pc.create_offer(), "could not create an offer").await?;
            let sdp = apply_local(pc, offer, "offer").await?;
            reporter.report(TransportEvent::LocalDescription(sdp));
        }
        PeerCommand::RestartIce => {
            let options = RtcOfferOptions::new();
            options.set_ice_restart(true);
            let offer = call(
                pc.create_offer_with_rtc_offer_options(&options),
                "could not create an ICE restart offer",
            )
            .await?;
            let sdp = apply_local(pc, offer, "offer").await?;
            reporter.report(TransportEvent::LocalDescription(sdp));
        }
        PeerCommand::Accept(sdp) => {
            apply_remote(pc, RtcSdpType::Offer, &sdp).await?;
            let answer = call(pc.create_answer(), "could not create an answer").await?;
            let sdp = apply_local(pc, answer, "answer").await?;
            reporter.report(TransportEvent::LocalDescription(sdp));
        }
        PeerCommand::Answer(sdp) => apply_remote(pc, RtcSdpType::Answer, &sdp).await?,
        PeerCommand::Candidate(candidate) => add_candidate(pc, &candidate).await,
        // `Transport::execute` ends the task instead of forwarding a close, and sends
        // itself.
        PeerCommand::Close | PeerCommand::Send(_) | PeerCommand::SendData(_) => {}
    }
    Ok(())
}

/// Awaits a browser promise, describing a rejection as `what: why`.
async fn call(promise: js_sys::Promise, what: &str) -> Result<JsValue, String> {
    JsFuture::from(promise)
        .await
        .map_err(|error| format!("{what}: {}", describe_js_error(&error)))
}

/// Sets the description the browser just created as ours; returns its SDP to publish.
async fn apply_local(
    pc: &RtcPeerConnection,
    created: JsValue,
    kind: &str,
) -> Result<String, String> {
    let description: RtcSessionDescriptionInit = created.unchecked_into();
    let sdp = description
        .get_sdp()
        .ok_or_else(|| format!("the browser created an {kind} without SDP"))?;
    call(
        pc.set_local_description(&description),
        &format!("could not apply our {kind}"),
    )
    .await?;
    Ok(sdp)
}

async fn apply_remote(pc: &RtcPeerConnection, kind: RtcSdpType, sdp: &str) -> Result<(), String> {
    let description = RtcSessionDescriptionInit::new(kind);
    description.set_sdp(sdp);
    let what = match kind {
        RtcSdpType::Offer => "could not apply the offer",
        _ => "could not apply the answer",
    };
    call(pc.set_remote_description(&description), what).await?;
    Ok(())
}

/// One bad candidate does not doom the connection: others may work.
async fn add_candidate(pc: &RtcPeerConnection, candidate: &IceCandidate) {
    let init = match candidate_init(candidate) {
        Ok(init) => init,
        Err(error) => {
            debug!(%error, "remote candidate could not be converted");
            return;
        }
    };
    let added = pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init));
    if let Err(error) = call(added, "remote candidate refused").await {
        debug!(%error);
    }
}

/// The browser's `RTCIceCandidateInit` for a protocol candidate. Built from the protocol's
/// JSON, which is `RTCIceCandidate.toJSON()`'s shape (web-sys has no `usernameFragment`).
fn candidate_init(candidate: &IceCandidate) -> Result<RtcIceCandidateInit, String> {
    let json = candidate_to_json(candidate);
    let value = JSON::parse(&json).map_err(|e| describe_js_error(&e))?;
    Ok(value.unchecked_into())
}

fn candidate_to_json(candidate: &IceCandidate) -> String {
    crate::protocol::write_candidate(candidate)
}

/// A local candidate from `RTCIceCandidate.toJSON()` as JSON text; `None` for the empty
/// end-of-candidates marker, which is not published.
fn candidate_from_json(json: &str) -> Result<Option<IceCandidate>, String> {
    let candidate = crate::protocol::read_candidate_json(json)?;
    Ok(Some(candidate).filter(|c| !c.candidate.is_empty()))
}

fn local_candidate(candidate: &RtcIceCandidate) -> Result<Option<IceCandidate>, String> {
    let json = JSON::stringify(&candidate.to_json()).map_err(|e| describe_js_error(&e))?;
    candidate_from_json(&String::from(json))
}

/// The browser's configuration for every peer connection of this client.
fn configuration(ice_servers: &[IceServer], relay_only: bool) -> RtcConfiguration {
    let servers = js_sys::Array::new();
    for server in ice_servers {
        let ice = RtcIceServer::new();
        let urls: js_sys::Array = server.urls.iter().map(|u| JsValue::from_str(u)).collect();
        ice.set_urls(&urls);
        if !server.username.is_empty() {
            ice.set_username(&server.username);
        }
        if !server.credential.is_empty() {
            ice.set_credential(&server.credential);
        }
        servers.push(&ice);
    }
    let configuration = RtcConfiguration::new();
    configuration.set_ice_servers(&servers);
    if relay_only {
        configuration.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
    }
    configuration
}

fn peer_status(state: RtcPeerConnectionState) -> Option<PeerStatus> {
    match state {
        RtcPeerConnectionState::New => Some(PeerStatus::New),
        RtcPeerConnectionState::Connecting => Some(PeerStatus::Connecting),
        RtcPeerConnectionState::Connected => Some(PeerStatus::Connected),
        RtcPeerConnectionState::Disconnected => Some(PeerStatus::Disconnected),
        RtcPeerConnectionState::Failed => Some(PeerStatus::Failed),
        RtcPeerConnectionState::Closed => Some(PeerStatus::Closed),
        _ => None,
    }
}

/// An `RTCPeerConnection` and the callbacks it calls; dropping it detaches them and closes
/// the connection.
struct PeerLink {
    pc: RtcPeerConnection,
    _on_ice_candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)>,
    _on_state_change: Closure<dyn FnMut(Event)>,
    _on_data_channel: Closure<dyn FnMut(RtcDataChannelEvent)>,
}

impl PeerLink {
    /// Creates the connection; the peer's `chat` channel is put in `chat`.
    fn open(
        configuration: &RtcConfiguration,
        reporter: &Reporter,
        chat: ChatSlot,
    ) -> Result<Self, String> {
        let pc = RtcPeerConnection::new_with_configuration(configuration).map_err(|e| {
            format!(
                "could not create a peer connection: {}",
                describe_js_error(&e)
            )
        })?;
        let on_ice_candidate = on_ice_candidate(reporter.clone());
        let on_state_change = on_state_change(pc.clone(), reporter.clone());
        let on_data_channel = on_data_channel(reporter.clone(), chat);
        pc.set_onicecandidate(Some(on_ice_candidate.as_ref().unchecked_ref()));
        pc.set_onconnectionstatechange(Some(on_state_change.as_ref().unchecked_ref()));
        pc.set_ondatachannel(Some(on_data_channel.as_ref().unchecked_ref()));
        Ok(Self {
            pc,
            _on_ice_candidate: on_ice_candidate,
            _on_state_change: on_state_change,
            _on_data_channel: on_data_channel,
        })
    }
}

/// Publishes our candidates as the browser gathers them.
fn on_ice_candidate(reporter: Reporter) -> Closure<dyn FnMut(RtcPeerConnectionIceEvent)> {
    Closure::new(move |event: RtcPeerConnectionIceEvent| {
        // A null candidate marks the end of gathering: nothing to publish.
        let Some(candidate) = event.candidate() else {
            return;
        };
        match local_candidate(&candidate) {
            Ok(Some(candidate)) => reporter.report(TransportEvent::LocalCandidate(candidate)),
            Ok(None) => {}
            Err(error) => warn!(%error, "local candidate could not be read"),
        }
    })
}

/// Reports `connectionState` changes. The connection is captured (not read from the
/// event) because the event carries no state; the cycle ends when the closure is dropped.
fn on_state_change(pc: RtcPeerConnection, reporter: Reporter) -> Closure<dyn FnMut(Event)> {
    Closure::new(move |_: Event| {
        if let Some(status) = peer_status(pc.connection_state()) {
            reporter.report(TransportEvent::StateChanged(status));
        }
    })
}

/// Takes the peer's `chat` channel. It is attached here, in the event itself, so no open or
/// message event is missed and no send finds the slot empty.
fn on_data_channel(reporter: Reporter, chat: ChatSlot) -> Closure<dyn FnMut(RtcDataChannelEvent)> {
    Closure::new(move |event: RtcDataChannelEvent| {
        let channel = event.channel();
        let label = channel.label();
        if label != CHAT_LABEL {
            debug!(conn = reporter.conn, %label, "ignoring a data channel that is not `chat`");
            return;
        }
        chat.replace(Some(ChatChannel::attach(channel, reporter.clone())));
        ChatChannel::report_if_open(&chat, &reporter);
    })
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.pc.set_onicecandidate(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.set_ondatachannel(None);
        self.pc.close();
    }
}

/// The `chat` data channel and its callbacks; dropping it detaches them and closes it.
struct ChatChannel {
    channel: RtcDataChannel,
    /// Bytes of file chunks sent, for `SendBufferLow` reports.
    chunk_bytes: Rc<Cell<u64>>,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(Event)>,
    _on_buffer_low: Closure<dyn FnMut(Event)>,
}

impl ChatChannel {
    /// Takes over a channel (ours or the peer's). Put it in its slot, then call
    /// [`ChatChannel::report_if_open`]: the open event may have fired already.
    fn attach(channel: RtcDataChannel, reporter: Reporter) -> Self {
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        let r = reporter.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            r.report(TransportEvent::ChannelOpen);
        });
        let r = reporter.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            r.report(channel_message(&event.data()));
        });
        let r = reporter.clone();
        let on_close = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            r.report(TransportEvent::ChannelClosed);
        });
        // The browser's bufferedamountlow: the machine hands over more file chunks. (A
        // batch of chunks is sent in one turn, so the buffer always rises above the mark
        // before it drains, and the event comes.)
        let chunk_bytes = Rc::new(Cell::new(0));
        let (r, sent, c) = (reporter, chunk_bytes.clone(), channel.clone());
        let on_buffer_low = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            r.report(TransportEvent::SendBufferLow {
                buffered: u64::from(c.buffered_amount()),
                chunk_bytes: sent.get(),
            });
        });
        channel.set_buffered_amount_low_threshold(SEND_BUFFER_LOW);
        channel.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        channel.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        channel.set_onbufferedamountlow(Some(on_buffer_low.as_ref().unchecked_ref()));
        Self {
            channel,
            chunk_bytes,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_buffer_low: on_buffer_low,
        }
    }

    /// Reports a channel that opened before it was attached. Called once the channel is in
    /// its slot, since the machine may answer the report with sends at once.
    fn report_if_open(slot: &ChatSlot, reporter: &Reporter) {
        let open = slot
            .borrow()
            .as_ref()
            .is_some_and(|chat| chat.channel.ready_state() == RtcDataChannelState::Open);
        if open {
            reporter.report(TransportEvent::ChannelOpen);
        }
    }

    fn send(&self, text: &str) -> Result<(), String> {
        self.channel.send_with_str(text).map_err(send_failed)
    }

    fn send_data(&self, data: &[u8]) -> Result<(), String> {
        self.channel.send_with_u8_array(data).map_err(send_failed)?;
        self.chunk_bytes
            .set(self.chunk_bytes.get() + data.len() as u64);
        Ok(())
    }
}

impl Drop for ChatChannel {
    fn drop(&mut self) {
        self.channel.set_onopen(None);
        self.channel.set_onmessage(None);
        self.channel.set_onclose(None);
        self.channel.set_onbufferedamountlow(None);
        self.channel.close();
    }
}

fn send_failed(error: JsValue) -> String {
    format!(
        "could not send on the chat channel: {}",
        describe_js_error(&error)
    )
}

/// A text message (chat text or a frame) or a binary one (a file chunk).
fn channel_message(data: &JsValue) -> TransportEvent {
    if let Some(text) = data.as_string() {
        return TransportEvent::ChannelMessage(text);
    }
    match data.dyn_ref::<ArrayBuffer>() {
        Some(buffer) => TransportEvent::ChannelData(Uint8Array::new(buffer).to_vec()),
        None => TransportEvent::ChannelData(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_browser_candidate_maps_to_the_protocol_and_back() {
        let json = r#"{"candidate":"candidate:1 1 udp 2122260223 192.0.2.2 40000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}"#;
        let candidate = candidate_from_json(json)
            .expect("parses")
            .expect("a real candidate");
        assert_eq!(candidate.sdp_mid.as_deref(), Some("0"));
        assert_eq!(candidate.sdp_mline_index, Some(0));
        assert_eq!(candidate.username_fragment.as_deref(), Some("abcd"));
        let back = crate::json::parse(&candidate_to_json(&candidate)).expect("json");
        assert_eq!(back, crate::json::parse(json).expect("json"));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn null_fields_are_kept_absent_and_the_end_marker_is_skipped() {
        let json = r#"{"candidate":"candidate:2 1 udp 1 198.51.100.1 9 typ host","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":null}"#;
        let candidate = candidate_from_json(json)
            .expect("parses")
            .expect("a candidate");
        assert_eq!(
            (
                candidate.sdp_mid,
                candidate.sdp_mline_index,
                candidate.username_fragment
            ),
            (None, None, None)
        );
        let end = r#"{"candidate":"","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}"#;
        assert_eq!(candidate_from_json(end).expect("parses"), None);
        assert!(candidate_from_json("{}").is_err());
    }
}

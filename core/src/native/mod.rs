//! The native backend: webrtc-rs peer connections and rumqttc signaling, on Tokio.
//!
//! A driver only: it executes the machine's actions and reports what happened. Every
//! decision lives in [`crate::machine`].

pub(crate) mod rt;
mod signaling;
mod transport;

use futures::channel::oneshot;

use crate::client::InputSender;
use crate::machine::{Action, ClientMachine};
use crate::options::ClientOptions;
use crate::server_url::ServerUrl;

/// Executes actions on the broker connection and the peer connections.
pub(crate) struct Backend {
    signaling: signaling::SignalingLink,
    transport: transport::Transport,
}

impl Backend {
    /// Starts connecting to the broker. The receiver yields a reason if the server cannot
    /// be reached at all; it is dropped unanswered once the first connection succeeds.
    pub fn start(
        url: &ServerUrl,
        machine: &ClientMachine,
        options: &ClientOptions,
        inputs: InputSender,
    ) -> (Self, oneshot::Receiver<String>) {
        let (signaling, unreachable) =
            signaling::SignalingLink::start(url, machine, inputs.clone());
        let transport = transport::Transport::new(options, inputs);
        (
            Self {
                signaling,
                transport,
            },
            unreachable,
        )
    }

    pub fn execute(&mut self, action: Action) {
        match action {
            Action::Subscribe { topic } => self.signaling.subscribe(topic),
            Action::Publish {
                topic,
                payload,
                retain,
            } => self.signaling.publish(topic, payload, retain),
            Action::CloseSignaling => self.signaling.close(),
            peer_action => self.transport.execute(peer_action),
        }
    }

    /// Waits (briefly) until the broker connection is closed and peer connections are gone.
    pub async fn shutdown(self) {
        self.transport.close_all();
        self.signaling.closed().await;
    }
}

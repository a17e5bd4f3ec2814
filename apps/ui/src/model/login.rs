//! The login form: which server to join, under which name, and (optionally) which STUN or
//! TURN servers to reach peers through.

use peerchat_core::protocol::validate_username;
use peerchat_core::{ClientOptions, IceServer};

/// What the login screen holds while the user types.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginForm {
    pub username: String,
    pub server_url: String,
    /// STUN or TURN URLs, separated by spaces or commas; none is needed on a LAN.
    pub ice_urls: String,
    pub ice_username: String,
    pub ice_credential: String,
    /// Every chat through TURN: peers never learn each other's addresses.
    pub relay_only: bool,
}

impl LoginForm {
    /// The client's options from what was typed (trimmed), or what to fix first.
    pub fn validated(&self) -> Result<ClientOptions, String> {
        let username = self.username.trim();
        let server_url = self.server_url.trim();
        if username.is_empty() {
            return Err("Choose a username.".to_owned());
        }
        validate_username(username).map_err(|e| format!("That username won't do: {e}."))?;
        if server_url.is_empty() {
            return Err("Enter the signaling server's URL.".to_owned());
        }
        let urls: Vec<String> = self
            .ice_urls
            .split([' ', ','])
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = urls.iter().find(|url| {
            !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|s| url.starts_with(s))
        }) {
            return Err(format!(
                "`{bad}` is not a STUN or TURN URL (turn:host:port)."
            ));
        }
        if self.relay_only && !urls.iter().any(|url| url.starts_with("turn")) {
            return Err("Relaying every chat needs a TURN server.".to_owned());
        }
        let mut options = ClientOptions::new(server_url, username);
        if !urls.is_empty() {
            options.ice_servers = vec![IceServer {
                urls,
                username: self.ice_username.trim().to_owned(),
                credential: self.ice_credential.clone(),
            }];
        }
        options.relay_only = self.relay_only;
        // Someone who used the app here before opens it without a server too: history,
        // outbox and "offline", until the server answers.
        options.start_offline = true;
        Ok(options)
    }
}

/// The signaling server a page served over `protocol` (`http:` or `https:`) from `host`
/// joins by default: the `/mqtt` endpoint next to it, over TLS when the page came over TLS.
/// A `?server=` query parameter (`server_param`) overrides it.
pub fn default_server_url(protocol: &str, host: &str, server_param: Option<&str>) -> String {
    if let Some(server) = server_param.map(str::trim).filter(|s| !s.is_empty()) {
        return server.to_owned();
    }
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}/mqtt")
}

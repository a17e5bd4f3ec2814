//! The login form: which server to join and under which name.

use peerchat_core::protocol::validate_username;

/// What the login screen holds while the user types.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginForm {
    pub username: String,
    pub server_url: String,
}

impl LoginForm {
    /// The trimmed username and server URL, or what to fix before connecting.
    pub fn validated(&self) -> Result<(String, String), String> {
        let username = self.username.trim();
        let server_url = self.server_url.trim();
        if username.is_empty() {
            return Err("Choose a username.".to_owned());
        }
        validate_username(username).map_err(|e| format!("That username won't do: {e}."))?;
        if server_url.is_empty() {
            return Err("Enter the signaling server's URL.".to_owned());
        }
        Ok((username.to_owned(), server_url.to_owned()))
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

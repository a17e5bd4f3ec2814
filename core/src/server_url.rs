//! The signaling server's address as users type it: `mqtt://`, `mqtts://`, `ws://`, `wss://`.
//!
//! Parsed once, without I/O, so both backends and the UI agree on what a URL means.

use crate::event::ClientError;

/// How the MQTT connection is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Tcp,
    Tls,
    WebSocket,
    SecureWebSocket,
}

/// A parsed signaling server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub carrier: Carrier,
    pub host: String,
    pub port: u16,
    /// The HTTP path for WebSocket carriers (`/mqtt` on peerchat-server); `/` otherwise.
    pub path: String,
    /// The URL as given, for messages.
    pub original: String,
}

impl ServerUrl {
    /// One URL, or several separated by commas: brokers of one cluster (or one server's
    /// listeners), tried in turn. At least one.
    pub fn parse_list(urls: &str) -> Result<Vec<Self>, ClientError> {
        let urls: Vec<Self> = (urls.split(','))
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(Self::parse)
            .collect::<Result<_, _>>()?;
        if urls.is_empty() {
            return Err(ClientError::BadServerUrl(String::new()));
        }
        Ok(urls)
    }

    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadServerUrl(url.to_owned());
        let (scheme, rest) = url.trim().split_once("://").ok_or_else(bad)?;
        let (carrier, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => (Carrier::Tcp, 1883),
            "mqtts" | "ssl" => (Carrier::Tls, 8883),
            "ws" => (Carrier::WebSocket, 80),
            "wss" => (Carrier::SecureWebSocket, 443),
            _ => return Err(bad()),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = split_host_port(authority).ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            carrier,
            host: host.to_owned(),
            port: port.unwrap_or(default_port),
            path: path.to_owned(),
            original: url.trim().to_owned(),
        })
    }

    /// The URL a WebSocket client dials, with the port made explicit.
    pub fn websocket_url(&self) -> String {
        let scheme = match self.carrier {
            Carrier::SecureWebSocket => "wss",
            _ => "ws",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_scheme_parses() {
        let url = ServerUrl::parse("mqtt://127.0.0.1:1883").unwrap();
        assert_eq!(
            (url.carrier, url.host.as_str(), url.port),
            (Carrier::Tcp, "127.0.0.1", 1883)
        );
        let url = ServerUrl::parse("ws://localhost:8080/mqtt").unwrap();
        assert_eq!(url.carrier, Carrier::WebSocket);
        assert_eq!(url.websocket_url(), "ws://localhost:8080/mqtt");
        let url = ServerUrl::parse("wss://chat.example/mqtt").unwrap();
        assert_eq!((url.port, url.path.as_str()), (443, "/mqtt"));
        let url = ServerUrl::parse("mqtts://[::1]").unwrap();
        assert_eq!(
            (url.carrier, url.host.as_str(), url.port),
            (Carrier::Tls, "::1", 8883)
        );
        assert_eq!(
            ServerUrl::parse("ws://[::1]:9/x").unwrap().websocket_url(),
            "ws://[::1]:9/x"
        );
    }

    #[test]
    fn a_comma_list_names_several_brokers() {
        let urls = ServerUrl::parse_list(" mqtt://a:1883, ws://b:8080/mqtt ,").unwrap();
        let hosts: Vec<&str> = urls.iter().map(|u| u.host.as_str()).collect();
        assert_eq!(hosts, ["a", "b"]);
        assert!(ServerUrl::parse_list(" , ").is_err());
        assert!(ServerUrl::parse_list("mqtt://a, http://b").is_err());
    }

    #[test]
    fn unsupported_urls_are_refused_clearly() {
        for url in [
            "http://x",
            "localhost:1883",
            "mqtt://",
            "mqtt://host:port",
            "ws://[::1",
        ] {
            assert_eq!(
                ServerUrl::parse(url),
                Err(ClientError::BadServerUrl(url.to_owned())),
                "{url}"
            );
        }
    }
}

//! Which web pages may open MQTT-over-WebSocket connections: browsers send the page's
//! `Origin` with every WebSocket request, so the server can refuse pages of other sites
//! (which would otherwise use it as free signaling, or reach a server on a private network
//! from the open web). Native clients send no `Origin` and are not concerned.

/// The allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Pages served from the server's own host name (any port and scheme: the app on the
    /// HTTP port, the original client's page served beside a broker on `:1883`).
    #[default]
    SameHost,
    /// These origins (`scheme://host[:port]`, as browsers send them), and the server's own
    /// host.
    List(Vec<String>),
    /// Any page (`--allow-origin '*'`).
    Any,
}

impl OriginPolicy {
    /// The policy for the given `--allow-origin` values: none means [`OriginPolicy::SameHost`].
    pub fn from_flags(origins: &[String]) -> Self {
        if origins.iter().any(|o| o == "*") {
            Self::Any
        } else if origins.is_empty() {
            Self::SameHost
        } else {
            Self::List(
                origins
                    .iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            )
        }
    }

    /// Whether a WebSocket request with `origin` (if the client sent one) to `host` (its
    /// `Host` header) is allowed.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let same_host = host.is_some_and(|host| host_of(&origin) == Some(strip_port(host)));
        match self {
            Self::Any => true,
            Self::SameHost => same_host,
            Self::List(allowed) => same_host || allowed.contains(&origin),
        }
    }
}

/// The host of `scheme://host[:port]`, lowercase, brackets of an IPv6 address kept.
fn host_of(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    Some(strip_port(rest))
}

fn strip_port(authority: &str) -> &str {
    if let Some(end) = authority.find(']') {
        return &authority[..=end];
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_clients_and_the_servers_own_pages_are_allowed() {
        let policy = OriginPolicy::default();
        assert!(policy.allows(None, Some("chat.example:8080")));
        assert!(policy.allows(Some("http://chat.example:8080"), Some("chat.example:8080")));
        // The original client's page beside the broker port.
        assert!(policy.allows(Some("http://chat.example"), Some("chat.example:1883")));
        assert!(policy.allows(Some("http://[::1]:8080"), Some("[::1]:1883")));
    }

    #[test]
    fn other_sites_are_refused_unless_listed() {
        let policy = OriginPolicy::default();
        assert!(!policy.allows(Some("https://evil.example"), Some("chat.example:8080")));
        assert!(!policy.allows(Some("null"), Some("chat.example")));
        assert!(!policy.allows(Some("https://evil.example"), None));
        let listed = OriginPolicy::from_flags(&["https://app.example/".to_owned()]);
        assert!(listed.allows(Some("https://APP.example"), Some("chat.example")));
        assert!(!listed.allows(Some("https://evil.example"), Some("chat.example")));
        let any = OriginPolicy::from_flags(&["*".to_owned()]);
        assert!(any.allows(Some("https://evil.example"), Some("chat.example")));
    }
}

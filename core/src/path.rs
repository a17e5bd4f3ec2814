//! How a chat's connection runs (directly, through NAT, or relayed by a TURN server) and
//! its round-trip time, as both backends read them from their ICE statistics.

use std::net::IpAddr;
use std::time::Duration;

/// How often a connected chat's path is reported: often enough for a live round-trip
/// figure, rarely enough to cost nothing.
pub const PATH_REPORT_INTERVAL: Duration = Duration::from_secs(2);

/// The kind of route between the two ends of a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Straight between the two hosts, as on one LAN.
    Direct,
    /// Through a NAT, at an address a STUN server or the peer's checks revealed.
    ThroughNat,
    /// Through a TURN relay: it sees encrypted traffic only.
    Relayed,
}

impl PathKind {
    /// Classifies the selected candidate pair from its ICE candidate types (`host`, `srflx`,
    /// `prflx`, `relay`) and the remote address. A peer-reflexive candidate with a private
    /// address is a LAN host that hid its address (browsers do, behind mDNS names), so it
    /// counts as direct; with a public address it was learnt across a NAT.
    pub fn classify(local_type: &str, remote_type: &str, remote_addr: Option<IpAddr>) -> Self {
        let types = [local_type, remote_type];
        let learnt_across_nat = remote_type == "prflx" && !remote_addr.is_some_and(is_local);
        if types.contains(&"relay") {
            Self::Relayed
        } else if types.contains(&"srflx") || learnt_across_nat {
            Self::ThroughNat
        } else {
            Self::Direct
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::ThroughNat => "nat",
            Self::Relayed => "relayed",
        }
    }
}

/// What is known of a chat's route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerPath {
    pub kind: PathKind,
    /// The latest round-trip time of ICE's consent checks, when one was measured.
    pub rtt_ms: Option<f64>,
}

/// Private, loopback, link-local and unique-local addresses: not reachable across the
/// internet, so a route to one stays inside a site.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unicast_link_local() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn relays_win_then_nat_then_direct() {
        assert_eq!(PathKind::classify("relay", "host", None), PathKind::Relayed);
        assert_eq!(PathKind::classify("host", "relay", None), PathKind::Relayed);
        assert_eq!(
            PathKind::classify("srflx", "host", ip("203.0.113.9")),
            PathKind::ThroughNat
        );
        assert_eq!(
            PathKind::classify("host", "host", ip("192.168.1.4")),
            PathKind::Direct
        );
    }

    #[test]
    fn a_hidden_lan_host_is_direct_a_public_one_is_not() {
        assert_eq!(
            PathKind::classify("host", "prflx", ip("192.168.1.4")),
            PathKind::Direct
        );
        assert_eq!(
            PathKind::classify("host", "prflx", ip("fd00::4")),
            PathKind::Direct
        );
        assert_eq!(
            PathKind::classify("host", "prflx", ip("203.0.113.9")),
            PathKind::ThroughNat
        );
        assert_eq!(
            PathKind::classify("host", "prflx", None),
            PathKind::ThroughNat
        );
    }
}

//! A cache of what browsers' `.local` candidate names resolved to.
//!
//! Browsers hide their addresses behind one random mDNS name per network (`<uuid>.local`)
//! and reuse it for every connection of a session. The first connection to a browser
//! resolves the name over mDNS within a millisecond, but a responder multicasts a record at
//! most once a second (RFC 6762 §6), so a query for the same name soon after goes
//! unanswered. Without the address our agent cannot check first; it waits for the
//! browser's check (a peer-reflexive candidate), and the browser, having no reply to a check
//! of ours, nominates only on its next pacing round, ~50 ms later. Measured on Chromium 156:
//! ~70 ms per setup instead of ~15 ms.
//!
//! So, like any mDNS querier, peerchat caches answers for their lifetime. It learns them
//! from the connections themselves: when one connects through a remote address whose port
//! is that of a `.local` candidate it was given, that name lives at that address. A later
//! `.local` candidate for the name is then also handed to the agent with the address in
//! place of the name, so checks start at once; the original candidate still goes to the
//! agent too, in case the address has changed since.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a learnt address is trusted: the TTL browsers give their host records
/// (RFC 6762 §10 recommends 120 s for them).
const ANSWER_LIFETIME: Duration = Duration::from_secs(120);

/// Names a client has seen resolve, shared by all its connections.
#[derive(Default)]
pub(crate) struct LocalNames {
    addresses: Mutex<HashMap<String, (IpAddr, Instant)>>,
}

impl LocalNames {
    /// The address `name` had within its lifetime, if it was learnt.
    pub fn address_of(&self, name: &str, now: Instant) -> Option<IpAddr> {
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        addresses.retain(|_, (_, learnt)| now.duration_since(*learnt) < ANSWER_LIFETIME);
        addresses.get(&name.to_ascii_lowercase()).map(|(ip, _)| *ip)
    }

    /// Remembers that `name` lives at `ip` as of `now`.
    pub fn learn(&self, name: &str, ip: IpAddr, now: Instant) {
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        addresses.insert(name.to_ascii_lowercase(), (ip, now));
    }
}

/// A remote candidate that names its host with an mDNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedCandidate {
    pub name: String,
    pub port: u16,
}

/// The candidate line's mDNS host name and port, if it gives a name instead of an address.
///
/// A candidate attribute reads (RFC 8839 §5.1):
/// `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> …`
pub(crate) fn named_candidate(candidate: &str) -> Option<NamedCandidate> {
    let mut fields = candidate.split_ascii_whitespace().skip(4);
    let address = fields.next()?;
    let port = fields.next()?.parse().ok()?;
    let is_mdns_name = address.len() > ".local".len()
        && address
            .get(address.len() - ".local".len()..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case(".local"));
    is_mdns_name.then(|| NamedCandidate {
        name: address.to_owned(),
        port,
    })
}

/// The candidate line with its address field replaced by `ip`.
pub(crate) fn with_address(candidate: &str, ip: IpAddr) -> String {
    candidate
        .split_ascii_whitespace()
        .enumerate()
        .map(|(i, field)| {
            if i == 4 {
                ip.to_string()
            } else {
                field.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROMIUM_HOST: &str = "candidate:2860127474 1 udp 2113937151 \
        df3c5b95-e93f-4563-b0e3-e72a58a006a1.local 48711 typ host generation 0 \
        ufrag /zgs network-cost 999";

    #[test]
    fn finds_the_name_and_port_of_an_mdns_candidate() {
        let named = named_candidate(CHROMIUM_HOST).expect("an mDNS candidate");
        assert_eq!(named.name, "df3c5b95-e93f-4563-b0e3-e72a58a006a1.local");
        assert_eq!(named.port, 48711);
    }

    #[test]
    fn ignores_candidates_with_addresses_and_malformed_lines() {
        let plain = "candidate:1 1 udp 2130706431 198.18.0.1 54030 typ host";
        assert_eq!(named_candidate(plain), None);
        assert_eq!(
            named_candidate("candidate:1 1 udp 1 .local 9 typ host"),
            None
        );
        assert_eq!(
            named_candidate("candidate:1 1 udp 1 a.local notaport"),
            None
        );
        assert_eq!(named_candidate(""), None);
    }

    #[test]
    fn replaces_only_the_address() {
        let ip: IpAddr = "198.18.0.1".parse().unwrap();
        assert_eq!(
            with_address(CHROMIUM_HOST, ip),
            "candidate:2860127474 1 udp 2113937151 198.18.0.1 48711 typ host generation 0 \
             ufrag /zgs network-cost 999"
        );
    }

    #[test]
    fn answers_expire_and_names_ignore_case() {
        let names = LocalNames::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let t0 = Instant::now();
        names.learn("ABC.local", ip, t0);
        assert_eq!(
            names.address_of("abc.local", t0 + Duration::from_secs(1)),
            Some(ip)
        );
        assert_eq!(names.address_of("abc.local", t0 + ANSWER_LIFETIME), None);
        assert_eq!(names.address_of("other.local", t0), None);
    }
}

//! Network changes on native platforms. On Linux the kernel announces every link, address
//! and route change on a netlink socket; a change that alters the addresses or default
//! routes in use is passed to [`crate::network::notify_changed`]. Android forbids apps
//! these notifications (its launcher reports changes from Java instead); other systems
//! rely on ICE noticing a lost path.

/// Starts the process's watcher, once; later calls do nothing.
pub(crate) fn start_once() {
    #[cfg(target_os = "linux")]
    {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| match linux::Watch::open() {
            // A thread of its own, blocked in poll(2) for the life of the process: it
            // outlives any one client and any one Tokio runtime.
            Ok(watch) => {
                let spawned = std::thread::Builder::new()
                    .name("peerchat-network-watch".into())
                    .spawn(move || watch.run());
                if let Err(error) = spawned {
                    tracing::warn!(%error, "cannot start the network watcher");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot watch for network changes"),
        });
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CStr;
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use tracing::{debug, info};

    /// A change arrives as a burst (link, then addresses, then routes); it counts once
    /// nothing more has come for this long.
    const SETTLE_MS: i32 = 100;

    pub(super) struct Watch {
        socket: OwnedFd,
    }

    impl Watch {
        /// A netlink socket subscribed to link, address and route changes.
        pub fn open() -> io::Result<Self> {
            // SAFETY: socket(2) with constant arguments; the result is checked below.
            let fd = unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::NETLINK_ROUTE,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            let socket = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
            let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            address.nl_groups = (libc::RTMGRP_LINK
                | libc::RTMGRP_IPV4_IFADDR
                | libc::RTMGRP_IPV6_IFADDR
                | libc::RTMGRP_IPV4_ROUTE
                | libc::RTMGRP_IPV6_ROUTE) as u32;
            // SAFETY: `address` is a valid sockaddr_nl and its size is passed with it.
            let bound = unsafe {
                libc::bind(
                    socket.as_raw_fd(),
                    (&raw const address).cast::<libc::sockaddr>(),
                    size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if bound < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Self { socket })
        }

        /// Reports each change of the network in use, forever.
        pub fn run(self) {
            let mut known = snapshot();
            loop {
                match next_change(|timeout_ms| self.wait(timeout_ms), snapshot, &mut known) {
                    Ok(true) => crate::network::notify_changed(),
                    Ok(false) => {}
                    Err(error) => {
                        info!(%error, "network watcher stopped");
                        return;
                    }
                }
            }
        }

        /// Waits up to `timeout_ms` (-1: forever) for notifications and discards them;
        /// `Ok(true)` if any came. Their content is not needed: `snapshot` says what is.
        fn wait(&self, timeout_ms: i32) -> io::Result<bool> {
            let fd = self.socket.as_raw_fd();
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            match unsafe { libc::poll(&mut poll, 1, timeout_ms) } {
                0 => return Ok(false),
                n if n < 0 => {
                    let error = io::Error::last_os_error();
                    return match error.kind() {
                        io::ErrorKind::Interrupted => Ok(false),
                        _ => Err(error),
                    };
                }
                _ => {}
            }
            let mut buffer = [0u8; 8192];
            loop {
                // SAFETY: the buffer is valid for its length.
                let read = unsafe {
                    libc::recv(
                        fd,
                        buffer.as_mut_ptr().cast(),
                        buffer.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if read < 0 {
                    let error = io::Error::last_os_error();
                    // Drained; or the kernel dropped notifications (ENOBUFS), which still
                    // means something changed.
                    return match error.raw_os_error() {
                        Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => Ok(true),
                        _ => Err(error),
                    };
                }
            }
        }
    }

    /// Waits for the next notifications (`wait(-1)`), then until none has come for
    /// [`SETTLE_MS`], and only then looks: `Ok(true)` if the network in use (`snapshot`)
    /// differs from `known`, which becomes it. Apart from the socket and the system's
    /// tables, so that what counts as a change is tested without them.
    fn next_change(
        mut wait: impl FnMut(i32) -> io::Result<bool>,
        snapshot: impl FnOnce() -> Vec<String>,
        known: &mut Vec<String>,
    ) -> io::Result<bool> {
        wait(-1)?;
        while let Ok(true) = wait(SETTLE_MS) {}
        let now = snapshot();
        if now == *known {
            return Ok(false);
        }
        debug!(?now, "the network changed");
        *known = now;
        Ok(true)
    }

    /// What the network in use is: the addresses of running interfaces and the default
    /// routes, sorted. IPv6 link-local addresses are left out: they come and go with links
    /// and carry no chat (a change of link shows in the other entries).
    fn snapshot() -> Vec<String> {
        let mut entries = interface_addresses();
        entries.extend(default_routes());
        entries.sort();
        entries
    }

    fn interface_addresses() -> Vec<String> {
        let mut entries = Vec::new();
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `list`, freed below with freeifaddrs.
        if unsafe { libc::getifaddrs(&mut list) } != 0 {
            return entries;
        }
        let mut next = list;
        while !next.is_null() {
            // SAFETY: a node of the list getifaddrs returned, alive until freeifaddrs.
            let entry = unsafe { &*next };
            next = entry.ifa_next;
            let flags = entry.ifa_flags;
            let running = libc::IFF_UP as u32 | libc::IFF_RUNNING as u32;
            if flags & running != running
                || flags & libc::IFF_LOOPBACK as u32 != 0
                || entry.ifa_addr.is_null()
            {
                continue;
            }
            // SAFETY: a non-null address of this node, read by its family.
            let address = unsafe {
                match i32::from((*entry.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*entry.ifa_addr.cast::<libc::sockaddr_in>();
                        Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)).to_string()
                    }
                    libc::AF_INET6 => {
                        let v6 = Ipv6Addr::from(
                            (*entry.ifa_addr.cast::<libc::sockaddr_in6>())
                                .sin6_addr
                                .s6_addr,
                        );
                        if v6.is_unicast_link_local() {
                            continue;
                        }
                        v6.to_string()
                    }
                    _ => continue,
                }
            };
            // SAFETY: ifa_name is a NUL-terminated string of this node.
            let name = unsafe { CStr::from_ptr(entry.ifa_name) }.to_string_lossy();
            entries.push(format!("{name} {address}"));
        }
        // SAFETY: `list` came from getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(list) };
        entries
    }

    /// Default routes (IPv4 and IPv6) with their interface and gateway, from /proc.
    fn default_routes() -> Vec<String> {
        let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
        default_routes_in(&v4, &v6)
    }

    /// The default routes in the text of `/proc/net/route` (`v4`) and
    /// `/proc/net/ipv6_route` (`v6`).
    fn default_routes_in(v4: &str, v6: &str) -> Vec<String> {
        let mut routes = Vec::new();
        for line in v4.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            if fields.len() > 7 && fields[1] == "00000000" && fields[7] == "00000000" {
                routes.push(format!("default {} via {}", fields[0], fields[2]));
            }
        }
        for line in v6.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // destination, prefix length, source, source length, next hop, metric, ...,
            // interface last.
            if fields.len() == 10 && fields[0].bytes().all(|b| b == b'0') && fields[1] == "00" {
                routes.push(format!("default6 {} via {}", fields[9], fields[4]));
            }
        }
        routes
    }

    #[cfg(test)]
    mod tests {
        use std::cell::RefCell;

        use super::*;

        /// The network in use: one address and one default route.
        fn network(address: &str, gateway: &str) -> Vec<String> {
            vec![
                format!("default eth0 via {gateway}"),
                format!("eth0 {address}"),
            ]
        }

        /// Runs one round of the watch over scripted notifications (what each wait
        /// returns, in turn) and the network found once they settle; returns whether a
        /// change was reported, the timeouts waited with, and how many waits had been made
        /// when the network was looked at.
        fn round(
            notifications: Vec<io::Result<bool>>,
            found: Vec<String>,
            known: &mut Vec<String>,
        ) -> (io::Result<bool>, Vec<i32>, Option<usize>) {
            let mut script = notifications.into_iter();
            let waits = RefCell::new(Vec::new());
            let looked_after = RefCell::new(None);
            let wait = |timeout_ms: i32| {
                waits.borrow_mut().push(timeout_ms);
                script.next().expect("waited once more than scripted")
            };
            let snapshot = || {
                *looked_after.borrow_mut() = Some(waits.borrow().len());
                found
            };
            let changed = next_change(wait, snapshot, known);
            (changed, waits.into_inner(), looked_after.into_inner())
        }

        #[test]
        fn a_burst_of_notifications_is_looked_at_once_100_ms_pass_quietly() {
            let mut known = network("192.0.2.5", "010200C0");
            // Link, address and route news in a burst, each within 100 ms of the last.
            let burst = vec![Ok(true), Ok(true), Ok(true), Ok(false)];
            let (changed, waits, looked_after) =
                round(burst, network("198.51.100.7", "0164A8C0"), &mut known);
            assert!(changed.unwrap());
            assert_eq!(waits, [-1, 100, 100, 100], "forever, then 100 ms at a time");
            assert_eq!(looked_after, Some(4), "looked only once the burst settled");
        }

        #[test]
        fn news_that_leaves_the_addresses_and_default_routes_as_they_were_reports_nothing() {
            let mut known = network("192.0.2.5", "010200C0");
            let (changed, _, _) = round(
                vec![Ok(true), Ok(false)],
                network("192.0.2.5", "010200C0"),
                &mut known,
            );
            assert!(!changed.unwrap());
            assert_eq!(known, network("192.0.2.5", "010200C0"));
        }

        #[test]
        fn a_new_address_or_default_route_is_reported_once_and_then_known() {
            let mut known = network("192.0.2.5", "010200C0");
            for now in [
                network("198.51.100.7", "010200C0"),
                network("198.51.100.7", "0164A8C0"),
            ] {
                let (changed, _, _) = round(vec![Ok(true), Ok(false)], now.clone(), &mut known);
                assert!(changed.unwrap(), "{now:?}");
                assert_eq!(known, now);
                // The same network again, after more news: nothing to report.
                let (again, _, _) = round(vec![Ok(true), Ok(false)], now.clone(), &mut known);
                assert!(!again.unwrap(), "{now:?} reported twice");
            }
        }

        #[test]
        fn a_socket_that_fails_stops_the_watch_without_looking() {
            let mut known = network("192.0.2.5", "010200C0");
            let failed = vec![Err(io::Error::from(io::ErrorKind::BrokenPipe))];
            let (changed, waits, looked_after) =
                round(failed, network("198.51.100.7", "010200C0"), &mut known);
            assert!(changed.is_err());
            assert_eq!(waits, [-1]);
            assert_eq!(looked_after, None);
            assert_eq!(known, network("192.0.2.5", "010200C0"));
        }

        /// `/proc/net/route` and `/proc/net/ipv6_route` as Linux writes them: a default
        /// route through `gateway` (and IPv6 through `fd00::1`) next to on-link routes.
        fn route_tables(gateway: &str, on_link: &str) -> (String, String) {
            let v4 = format!(
                "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 eth0\t00000000\t{gateway}\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                 eth0\t{on_link}\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
            );
            let v6 = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 \
                      00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n\
                      00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
                      fd000000000000000000000000000001 00000400 00000002 00000000 00000003 eth0\n\
                      00000000000000000000000000000001 80 00000000000000000000000000000000 00 \
                      00000000000000000000000000000000 00000000 00000002 00000000 80200001 lo\n"
                .to_owned();
            (v4, v6)
        }

        #[test]
        fn among_routes_only_the_default_ones_are_part_of_the_network_in_use() {
            let (v4, v6) = route_tables("010200C0", "000200C0");
            let routes = default_routes_in(&v4, &v6);
            assert_eq!(
                routes,
                [
                    "default eth0 via 010200C0",
                    "default6 eth0 via fd000000000000000000000000000001",
                ]
            );
            // Another on-link route: the same network in use.
            let (v4, v6) = route_tables("010200C0", "0064A8C0");
            assert_eq!(default_routes_in(&v4, &v6), routes);
            // Another gateway: a different one.
            let (v4, v6) = route_tables("0164A8C0", "000200C0");
            assert_ne!(default_routes_in(&v4, &v6), routes);
        }
    }
}

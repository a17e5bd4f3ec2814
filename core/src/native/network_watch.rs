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
                if let Err(error) = self.wait(-1) {
                    info!(%error, "network watcher stopped");
                    return;
                }
                while let Ok(true) = self.wait(SETTLE_MS) {}
                let now = snapshot();
                if now != known {
                    debug!(?now, "the network changed");
                    known = now;
                    crate::network::notify_changed();
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
        let mut routes = Vec::new();
        let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        for line in v4.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            if fields.len() > 7 && fields[1] == "00000000" && fields[7] == "00000000" {
                routes.push(format!("default {} via {}", fields[0], fields[2]));
            }
        }
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
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
}

//! A packet capture of every interface in the test's private network namespace: the bytes
//! anyone on the path between two peers, or between a peer and the broker, could read.
//!
//! A test that asks whether something travels encrypted captures the whole namespace while
//! it happens, then looks for the plaintext in every frame. Only a namespace of the test's
//! own ([`crate::netns`]) is captured, so nothing else on the machine is seen.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A running capture; [`WireCapture::finish`] stops it and hands over what it saw.
pub struct WireCapture {
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    done: Arc<AtomicBool>,
    /// Ends with how many frames the kernel dropped for want of buffer.
    reader: Option<JoinHandle<u32>>,
}

/// The frames a capture saw, each once (a frame sent on loopback is kept as received).
pub struct Wire {
    frames: Vec<Vec<u8>>,
}

impl WireCapture {
    /// Starts capturing every frame on every interface of this namespace.
    pub fn start() -> Self {
        assert!(
            crate::netns::is_inside(),
            "a capture must see only the test's own traffic: run it in a private namespace"
        );
        let socket = packet_socket().expect("a packet socket (it needs root, as netns.sh does)");
        let frames = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (frames, done) = (frames.clone(), done.clone());
            thread::spawn(move || read_frames(&socket, &frames, &done))
        };
        Self {
            frames,
            done,
            reader: Some(reader),
        }
    }

    /// Stops the capture once it has read what the kernel already holds for it. A capture
    /// that missed frames could miss the very bytes a test looks for, so that fails here.
    pub fn finish(mut self) -> Wire {
        self.done.store(true, Ordering::SeqCst);
        let reader = self.reader.take().expect("finished once");
        let dropped = reader.join().expect("the capture thread ends");
        assert_eq!(
            dropped, 0,
            "the capture missed frames: its buffer overflowed"
        );
        Wire {
            frames: std::mem::take(&mut *self.frames.lock().unwrap()),
        }
    }
}

impl Drop for WireCapture {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

impl Wire {
    /// Whether any frame holds `bytes` as they are.
    pub fn carried(&self, bytes: &[u8]) -> bool {
        self.frames
            .iter()
            .any(|frame| frame.windows(bytes.len()).any(|window| window == bytes))
    }

    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// The UDP datagrams' payloads (IPv4 and IPv6), where WebRTC's traffic goes.
    pub fn udp_payloads(&self) -> impl Iterator<Item = &[u8]> {
        self.frames.iter().filter_map(|frame| udp_payload(frame))
    }

    /// Bytes of application data carried in DTLS 1.2 records, the only record type that
    /// carries a data channel's content once the handshake is done.
    pub fn dtls_application_bytes(&self) -> usize {
        self.udp_payloads().map(dtls_application_bytes).sum()
    }
}

/// An `AF_PACKET` socket that sees every protocol on every interface, with a receive buffer
/// large enough for a burst of file chunks and a timeout so the reader can notice the end.
fn packet_socket() -> io::Result<OwnedFd> {
    let all_protocols = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
    // SAFETY: plain system calls on a descriptor this function owns.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            all_protocols,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let buffer: libc::c_int = 32 << 20;
        set_option(&socket, libc::SO_RCVBUFFORCE, &buffer)?;
        let poll = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        set_option(&socket, libc::SO_RCVTIMEO, &poll)?;
        Ok(socket)
    }
}

/// # Safety
/// `value` must be the type the kernel expects for `option`.
unsafe fn set_option<T>(socket: &OwnedFd, option: libc::c_int, value: &T) -> io::Result<()> {
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if set == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads frames until told to stop; then drains what the kernel holds, for at most a
/// second (traffic may not pause), and returns how many frames the kernel dropped.
fn read_frames(socket: &OwnedFd, frames: &Mutex<Vec<Vec<u8>>>, done: &AtomicBool) -> u32 {
    let mut buffer = vec![0u8; 1 << 17];
    let mut drain_until = None;
    loop {
        if drain_until.is_none() && done.load(Ordering::SeqCst) {
            drain_until = Some(Instant::now() + Duration::from_secs(1));
        }
        let draining = drain_until.is_some();
        if drain_until.is_some_and(|until| Instant::now() > until) {
            return dropped_frames(socket);
        }
        // SAFETY: `from` and `buffer` outlive the call, and their lengths are given.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        let flags = if draining { libc::MSG_DONTWAIT } else { 0 };
        let read = unsafe {
            libc::recvfrom(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                flags,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut from_len,
            )
        };
        if read < 0 {
            let error = io::Error::last_os_error();
            match error.kind() {
                // Nothing left while draining: the end.
                io::ErrorKind::WouldBlock if draining => return dropped_frames(socket),
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => continue,
                _ => panic!("the capture failed: {error}"),
            }
        }
        // Loopback shows each frame twice, leaving and arriving: keep the arrival. (A frame
        // longer than the buffer keeps its first 128 KiB; loopback's are at most 64 KiB.)
        if from.sll_pkttype != libc::PACKET_OUTGOING {
            frames
                .lock()
                .unwrap()
                .push(buffer[..read as usize].to_vec());
        }
    }
}

/// How many frames the kernel dropped for this socket (its statistics, read once).
fn dropped_frames(socket: &OwnedFd) -> u32 {
    // SAFETY: `stats` outlives the call, and its length is given.
    let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    let read = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut length,
        )
    };
    assert_eq!(read, 0, "packet statistics: {}", io::Error::last_os_error());
    stats.tp_drops
}

/// The payload of a UDP datagram in an Ethernet frame (loopback's frames have an Ethernet
/// header of zeros), or `None` for anything else.
fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    const UDP: u8 = 17;
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    let udp = match ethertype {
        0x0800 if ip.get(9) == Some(&UDP) => ip.get(usize::from(ip[0] & 0x0f) * 4..)?,
        0x86dd if ip.get(6) == Some(&UDP) => ip.get(40..)?,
        _ => return None,
    };
    udp.get(8..)
}

/// Sums the lengths of the DTLS 1.2 application-data records in one datagram (a datagram
/// may hold several records, each with a 13-byte header).
fn dtls_application_bytes(mut datagram: &[u8]) -> usize {
    const APPLICATION_DATA: u8 = 23;
    let mut total = 0;
    while datagram.len() >= 13 && datagram[1..3] == [0xfe, 0xfd] {
        let length = usize::from(u16::from_be_bytes([datagram[11], datagram[12]]));
        if datagram[0] == APPLICATION_DATA {
            total += length;
        }
        datagram = datagram.get(13 + length..).unwrap_or_default();
    }
    total
}

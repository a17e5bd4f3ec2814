//! WebRTC's UDP sockets with room for a burst.
//!
//! A file goes out as fast as SCTP's window allows, and on loopback or a fast LAN the
//! receiver's socket buffer (Linux's default is 208 KiB) overflows before it is read: the
//! lost packets are found again only by a retransmission timeout, a second or more each.
//! Measured with a 64 MiB file on loopback: 7–18 MB/s with default buffers, 127–138 MB/s
//! with 4 MiB ones. webrtc-rs binds its sockets itself and hands each to its runtime to
//! wrap, so this runtime is Tokio's with bigger socket buffers.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::SockRef;
use tracing::debug;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    default_runtime,
};

/// What each UDP socket's send and receive buffers are asked to hold. The kernel grants at
/// most `net.core.rmem_max` / `wmem_max` to an unprivileged process.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// The default runtime (Tokio), wrapping UDP sockets with [`SOCKET_BUFFER_BYTES`].
#[derive(Debug)]
pub(crate) struct RoomySockets(Arc<dyn Runtime>);

impl RoomySockets {
    /// `None` outside a Tokio runtime, as webrtc-rs's own default.
    pub fn runtime() -> Option<Arc<dyn Runtime>> {
        default_runtime().map(|inner| Arc::new(Self(inner)) as Arc<dyn Runtime>)
    }
}

fn enlarge_buffers(socket: &std::net::UdpSocket) {
    let socket = SockRef::from(socket);
    if let Err(error) = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES) {
        debug!(%error, "could not enlarge a UDP receive buffer");
    }
    if let Err(error) = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES) {
        debug!(%error, "could not enlarge a UDP send buffer");
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for RoomySockets {
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        enlarge_buffers(&socket);
        self.0.wrap_udp_socket(socket)
    }

    // Everything else is the inner runtime's.

    fn spawn(&self, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        self.0.spawn(future)
    }

    fn spawn_reactor(
        &self,
        pool_size: usize,
        future: BoxFuture<'static, ()>,
    ) -> Box<dyn JoinHandle> {
        self.0.spawn_reactor(pool_size, future)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.0.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        self.0.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        self.0.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.0.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.0.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.0.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.0.block_on(future)
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        self.0.yield_now()
    }

    fn name(&self) -> &'static str {
        self.0.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_get_bigger_buffers_than_the_default() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("binds on loopback");
        let before = SockRef::from(&socket).recv_buffer_size().expect("readable");
        enlarge_buffers(&socket);
        let after = SockRef::from(&socket).recv_buffer_size().expect("readable");
        // The kernel may cap the request (rmem_max) but never shrinks the buffer for it.
        assert!(after >= before, "{after} < {before}");
    }
}

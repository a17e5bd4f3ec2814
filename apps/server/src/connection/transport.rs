//! The two halves of a client connection as the pump sees them: bytes in, packets out.
//! TCP and WebSocket clients both come down to these, so one pump serves both.

use std::future::Future;
use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Bytes reserved for one socket read, once the socket has something to read.
const READ_RESERVE: usize = 4 * 1024;

/// Bytes a client sends, in chunks that need not align with MQTT packets.
pub trait ClientInput: Send {
    /// Appends the next bytes the client sent to `buffer`; `Ok(0)` once the client has
    /// closed. Holds no buffer space while waiting (an idle connection costs little), and is
    /// cancel-safe: dropping the future loses no bytes.
    fn read_into(
        &mut self,
        buffer: &mut BytesMut,
    ) -> impl Future<Output = io::Result<usize>> + Send;
}

/// Where packets for a client go.
pub trait ClientOutput: Send {
    /// Sends one whole MQTT packet (one WebSocket message each, as the original server
    /// does) and flushes it.
    fn send(&mut self, packet: Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// Closes the client's connection after what was sent.
    fn close(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

/// A TCP connection's reading half.
pub struct TcpInput(pub OwnedReadHalf);

/// A TCP connection's writing half.
pub struct TcpOutput(pub OwnedWriteHalf);

impl ClientInput for TcpInput {
    async fn read_into(&mut self, buffer: &mut BytesMut) -> io::Result<usize> {
        loop {
            self.0.readable().await?;
            buffer.reserve(READ_RESERVE);
            match self.0.try_read_buf(buffer) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                read => return read,
            }
        }
    }
}

impl ClientOutput for TcpOutput {
    async fn send(&mut self, packet: Bytes) -> io::Result<()> {
        self.0.write_all(&packet).await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

/// The reading half of any byte stream (a TLS connection).
pub struct StreamInput<R>(pub R);

/// The writing half of any byte stream (a TLS connection).
pub struct StreamOutput<W>(pub W);

impl<R: AsyncRead + Unpin + Send> ClientInput for StreamInput<R> {
    async fn read_into(&mut self, buffer: &mut BytesMut) -> io::Result<usize> {
        buffer.reserve(READ_RESERVE);
        self.0.read_buf(buffer).await
    }
}

impl<W: AsyncWrite + Unpin + Send> ClientOutput for StreamOutput<W> {
    async fn send(&mut self, packet: Bytes) -> io::Result<()> {
        self.0.write_all(&packet).await?;
        self.0.flush().await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

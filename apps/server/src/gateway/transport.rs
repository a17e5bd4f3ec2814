//! The two halves of a client connection as the gateway sees them: bytes in, bytes out.
//! TCP and WebSocket clients both come down to these, so one session pump serves both.

use std::future::Future;
use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes a client sends, in chunks that need not align with MQTT packets.
pub trait ClientInput: Send {
    /// Appends the next bytes the client sent to `buffer`; `Ok(0)` once the client has closed.
    /// Cancel-safe: dropping the future loses no bytes.
    fn read_into(
        &mut self,
        buffer: &mut BytesMut,
    ) -> impl Future<Output = io::Result<usize>> + Send;
}

/// Where bytes for a client go.
pub trait ClientOutput: Send {
    /// Sends `bytes` (whole MQTT packets) and flushes them.
    fn send(&mut self, bytes: Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// Closes the client's connection after what was sent.
    fn close(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

/// The reading half of a byte stream (a TCP connection).
pub struct StreamInput<R>(pub R);

/// The writing half of a byte stream (a TCP connection).
pub struct StreamOutput<W>(pub W);

impl<R: AsyncRead + Unpin + Send> ClientInput for StreamInput<R> {
    async fn read_into(&mut self, buffer: &mut BytesMut) -> io::Result<usize> {
        self.0.read_buf(buffer).await
    }
}

impl<W: AsyncWrite + Unpin + Send> ClientOutput for StreamOutput<W> {
    async fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        self.0.write_all(&bytes).await?;
        self.0.flush().await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

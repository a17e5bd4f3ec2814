//! Bulk throughput: one file of each size from the caller to the callee over an open
//! chat, timed from `send_file` to the sender's delivery acknowledgement (the receiver has
//! every byte), and checked byte for byte at the receiver.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use peerchat_core::{Client, ClientEvent, Events};

/// One transfer's result.
pub struct Transfer {
    pub bytes: usize,
    pub took: Duration,
}

impl Transfer {
    /// Megabytes (10^6 bytes) per second, as throughput is usually quoted.
    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.took.as_secs_f64()
    }
}

/// How long one transfer may take: a 256 MiB file at 10 MB/s with room to spare.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);

/// Sends a file of `bytes` from `caller` to `callee` (open chat between them); returns how
/// long it took until the caller saw it delivered.
pub async fn send_one(
    (caller, caller_events): (&Client, &mut Events),
    (callee, callee_events): (&Client, &mut Events),
    bytes: usize,
) -> anyhow::Result<Transfer> {
    let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let started = Instant::now();
    let id = caller
        .send_file(
            &callee.username(),
            "bulk.bin",
            "application/octet-stream",
            &data,
        )
        .with_context(|| format!("send_file of {bytes} bytes"))?;
    let delivered = super::wait_within(
        TRANSFER_TIMEOUT,
        caller_events,
        |e| matches!(e, ClientEvent::Delivered { id: d, .. } if *d == id),
    );
    delivered
        .await
        .with_context(|| format!("{bytes} bytes were not delivered"))?;
    let took = started.elapsed();
    let received = super::wait_within(TRANSFER_TIMEOUT, callee_events, |e| {
        matches!(e, ClientEvent::File { .. })
    })
    .await?;
    let ClientEvent::File { data: got, .. } = received else {
        unreachable!("waited for a file")
    };
    if got != data {
        bail!("the {bytes}-byte file arrived changed");
    }
    Ok(Transfer { bytes, took })
}

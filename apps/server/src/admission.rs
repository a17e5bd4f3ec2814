//! Who may open a connection: at most so many at once from one IP address, and so many in
//! all. A ticket holds a place until it is dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

use crate::limits::Limits;

/// Open connections, by address.
#[derive(Debug)]
pub struct Admission {
    per_address: usize,
    total: usize,
    open: Mutex<Open>,
    /// The second of the last refusal logged, so a flood of refusals logs one line a second.
    last_logged: AtomicU64,
}

#[derive(Debug, Default)]
struct Open {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

/// A place taken by one open connection.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Admission {
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            per_address: limits.connections_per_address,
            total: limits.max_connections,
            open: Mutex::default(),
            last_logged: AtomicU64::new(0),
        })
    }

    /// A ticket for a connection from `address`, or `None` (logged) when it may not open.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Ticket> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        let refusal = if open.total >= self.total {
            Some("the server holds its maximum of connections (--max-connections)")
        } else if self.per_address > 0 && from_address >= self.per_address {
            Some("too many connections from one address (--max-connections-per-address)")
        } else {
            None
        };
        if let Some(why) = refusal {
            drop(open);
            self.log_refusal(address, why);
            return None;
        }
        *open.by_address.entry(address).or_default() += 1;
        open.total += 1;
        Some(Ticket {
            admission: self.clone(),
            address,
        })
    }

    fn log_refusal(&self, address: IpAddr, why: &str) {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_secs());
        if self.last_logged.swap(second, Ordering::Relaxed) != second {
            warn!(%address, "connection refused: {why}");
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let admission = &self.admission;
        let mut open = admission
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_share_and_gets_it_back() {
        let limits = Limits {
            connections_per_address: 2,
            max_connections: 3,
            ..Limits::default()
        };
        let admission = Admission::new(&limits);
        let (a, b) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert!(admission.admit(a).is_none());
        let _third = admission.admit(b).unwrap();
        assert!(admission.admit(b).is_none(), "the total is reached");
        drop(first);
        assert!(admission.admit(a).is_some());
    }
}

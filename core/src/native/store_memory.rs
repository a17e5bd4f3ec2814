//! The store where no database is built (Android, for now): nothing outlives the process,
//! and a file asked for is refused with a warning rather than a failed start.

use tracing::warn;

use crate::event::ClientError;
use crate::machine::{SavedState, StoreOp};
use crate::store::{Storage, StoredMessage};

/// Keeps nothing. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Store;

impl Store {
    pub async fn open(
        storage: &Storage,
        _me: &str,
    ) -> Result<(Self, Option<SavedState>, Option<ClientError>), ClientError> {
        if *storage != Storage::Memory {
            warn!(
                ?storage,
                "no message store on this platform; history stays in memory"
            );
        }
        Ok((Self, None, None))
    }

    pub fn apply(&self, _op: StoreOp) {}

    /// Never: nothing is written.
    pub fn busy(&self) -> bool {
        false
    }

    pub fn landed(&self) -> std::future::Ready<()> {
        std::future::ready(())
    }

    pub async fn history(&self, _peer: &str, _limit: usize) -> Vec<StoredMessage> {
        Vec::new()
    }
}

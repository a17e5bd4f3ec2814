//! A name's record as the names bucket keeps it: the registry's [`NameRecord`], with the
//! holder named by gateway and connection ([`Seat`]), as JSON. Also the note a gateway
//! publishes when a name's holder changes, for the gateways whose clients watch it.

use peerchat_core::identity::PublicKey;
use serde::{Deserialize, Serialize};

use crate::connection::ConnectionId;
use crate::hub::registry::{Binding, Holder, NameRecord};

/// One connection of the cluster: which gateway, and its number there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Seat {
    pub gateway: String,
    pub connection: ConnectionId,
}

/// A name's record in the cluster.
pub type ClusterRecord = NameRecord<Seat>;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binding: Option<StoredBinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    holder: Option<StoredHolder>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredBinding {
    key: String,
    last_used: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredHolder {
    gateway: String,
    connection: ConnectionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    listening: bool,
}

/// A stored record that does not read back: refusing to decide is safer than deciding on a
/// guess.
#[derive(Debug, thiserror::Error)]
#[error("a name record in the names bucket does not read: {0}")]
pub struct BadRecord(String);

pub fn encode(record: &ClusterRecord) -> bytes::Bytes {
    let stored = Stored {
        binding: record.binding.map(|b| StoredBinding {
            key: b.key.to_text(),
            last_used: b.last_used,
        }),
        holder: record.holder.as_ref().map(|h| StoredHolder {
            gateway: h.connection.gateway.clone(),
            connection: h.connection.connection,
            session: h.session.clone(),
            key: h.key.map(|k| k.to_text()),
            listening: h.listening,
        }),
    };
    serde_json::to_vec(&stored)
        .expect("a name record serializes")
        .into()
}

pub fn decode(bytes: &[u8]) -> Result<ClusterRecord, BadRecord> {
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| BadRecord(e.to_string()))?;
    let key = |text: &str| PublicKey::parse(text).ok_or_else(|| BadRecord(format!("key {text}")));
    let binding = match stored.binding {
        Some(b) => Some(Binding {
            key: key(&b.key)?,
            last_used: b.last_used,
        }),
        None => None,
    };
    let holder = match stored.holder {
        Some(h) => Some(Holder {
            connection: Seat {
                gateway: h.gateway,
                connection: h.connection,
            },
            session: h.session,
            key: h.key.as_deref().map(key).transpose()?,
            listening: h.listening,
        }),
        None => None,
    };
    Ok(NameRecord { binding, holder })
}

/// What gateways tell each other when a name's holder changes (on its presence subject).
/// `revision` orders notes and reads of the bucket: an older one never overrides a newer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceNote {
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<NoteHolder>,
}

/// The holder, as presence needs it: where (to tell whether its gateway lives) and its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteHolder {
    pub gateway: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl PresenceNote {
    /// The note for `record` as written at `revision`.
    pub fn of(record: &ClusterRecord, revision: u64) -> Self {
        Self {
            revision,
            holder: record.holder.as_ref().map(|h| NoteHolder {
                gateway: h.connection.gateway.clone(),
                session: h.session.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchat_core::identity::Identity;

    #[test]
    fn a_record_reads_back_as_written() {
        let key = Identity::from_seed([3; 32]).public();
        let record = NameRecord {
            binding: Some(Binding { key, last_used: 7 }),
            holder: Some(Holder {
                connection: Seat {
                    gateway: "g1".into(),
                    connection: 9,
                },
                session: Some("s".into()),
                key: Some(key),
                listening: true,
            }),
        };
        assert_eq!(decode(&encode(&record)).unwrap(), record);
        let empty = ClusterRecord::default();
        assert_eq!(&encode(&empty)[..], b"{}");
        assert_eq!(decode(b"{}").unwrap(), empty);
        assert!(decode(b"{\"binding\":{\"key\":\"nope\",\"last_used\":1}}").is_err());
    }
}

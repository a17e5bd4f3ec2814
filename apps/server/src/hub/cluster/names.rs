//! The names bucket: opening it, and rewriting one name's record with compare-and-set, so
//! two gateways deciding about one name at once never both win: the second write finds the
//! revision moved, reads again and decides again.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use tokio::time::{Instant, sleep};
use tracing::{debug, info};

use super::record::{self, BadRecord, ClusterRecord};
use super::subjects::name_key;

/// How long a gateway keeps trying to open the bucket at start (a cluster just started
/// elects its JetStream leaders first).
const OPEN_WITHIN: Duration = Duration::from_secs(60);

/// How long one request to the bucket may take before it is tried again: a request to a
/// bucket whose leader just died is never answered, and a new leader is elected meanwhile.
pub const REQUEST_PATIENCE: Duration = Duration::from_secs(1);

/// How long a presence read keeps trying (it holds up the watcher's subscription).
const READ_WITHIN: Duration = Duration::from_secs(3);

/// How long one decision keeps trying through a cluster that does not answer (a node died
/// and its streams elect new leaders).
const DECIDE_WITHIN: Duration = Duration::from_secs(8);

/// Why a decision about a name could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Trouble {
    #[error("the names bucket is out of reach: {0}")]
    Unreachable(String),
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
}

/// Opens the names bucket, creating it with `replicas` copies if no gateway did yet; requests
/// through the store give up after [`REQUEST_PATIENCE`] (and are tried again). Reads
/// go to the bucket's leader (no direct reads), never to a replica that may lag: a decision
/// never rests on an old record (a write would fail on one anyway, but a refusal would not).
pub async fn open(
    client: &async_nats::Client,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, String> {
    let js = jetstream::new(client.clone());
    let mut impatient = jetstream::new(client.clone());
    impatient.set_timeout(REQUEST_PATIENCE);
    let deadline = Instant::now() + OPEN_WITHIN;
    loop {
        match try_open(&js, bucket, replicas).await {
            Ok(_) => {
                return (impatient.get_key_value(bucket).await).map_err(|e| e.to_string());
            }
            Err(why) if Instant::now() < deadline => {
                debug!(%why, "names bucket not ready yet");
                sleep(Duration::from_millis(500)).await;
            }
            Err(why) => return Err(why),
        }
    }
}

async fn try_open(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, String> {
    if js.get_key_value(bucket).await.is_err() {
        // The stream behind a key-value bucket, made by hand: async-nats's
        // `create_key_value` first reads account details that nats-server 2.9 words
        // differently. These are the settings it would use, but for direct reads.
        let config = jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("peerchat: each name's identity key and live holder".to_owned()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: false,
            discard: jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        };
        match js.create_stream(config).await {
            Ok(_) => info!(replicas, "names bucket created"),
            // Another gateway may have created it meanwhile; it is read back below.
            Err(e) => debug!("names bucket not created: {e}"),
        }
    }
    js.get_key_value(bucket).await.map_err(|e| e.to_string())
}

/// `name`'s record and its revision (0: never written).
pub async fn read(store: &kv::Store, name: &str) -> Result<(ClusterRecord, u64), Trouble> {
    let entry =
        (store.entry(name_key(name)).await).map_err(|e| Trouble::Unreachable(e.to_string()))?;
    match entry {
        Some(entry) if entry.operation == kv::Operation::Put => {
            Ok((record::decode(&entry.value)?, entry.revision))
        }
        Some(entry) => Ok((ClusterRecord::default(), entry.revision)),
        None => Ok((ClusterRecord::default(), 0)),
    }
}

/// [`read`], tried again for [`READ_WITHIN`] while the bucket does not answer.
pub async fn read_patiently(
    store: &kv::Store,
    name: &str,
) -> Result<(ClusterRecord, u64), Trouble> {
    let deadline = Instant::now() + READ_WITHIN;
    loop {
        match read(store, name).await {
            Err(Trouble::Unreachable(_)) if Instant::now() < deadline => {
                sleep(Duration::from_millis(100)).await;
            }
            done => return done,
        }
    }
}

/// Reads `name`'s record, lets `decide` change it (returning its answer and whether it
/// changed the record), and writes a change back only if nobody wrote since the read;
/// otherwise reads and decides again. The answer, and the written record with its revision
/// if there was a change.
pub async fn rewrite<T>(
    store: &kv::Store,
    name: &str,
    mut decide: impl FnMut(&mut ClusterRecord) -> (T, bool),
) -> Result<(T, Option<(ClusterRecord, u64)>), Trouble> {
    let deadline = Instant::now() + DECIDE_WITHIN;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcome = async {
            let (mut record, revision) = read(store, name).await?;
            let (answer, changed) = decide(&mut record);
            if !changed {
                return Ok(Some((answer, None)));
            }
            match store
                .update(name_key(name), record::encode(&record), revision)
                .await
            {
                Ok(written) => Ok(Some((answer, Some((record, written))))),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    debug!(user = %name, attempt, "name record changed meanwhile: deciding again");
                    Ok(None)
                }
                Err(e) => Err(Trouble::Unreachable(e.to_string())),
            }
        }
        .await;
        match outcome {
            Ok(Some(done)) => return Ok(done),
            Ok(None) if Instant::now() < deadline => {}
            Ok(None) => {
                return Err(Trouble::Unreachable(
                    "the record kept changing under every write".to_owned(),
                ));
            }
            Err(Trouble::Unreachable(why)) if Instant::now() < deadline => {
                debug!(user = %name, %why, "names bucket not answering: trying again");
                sleep(Duration::from_millis(200)).await;
            }
            Err(trouble) => return Err(trouble),
        }
    }
}

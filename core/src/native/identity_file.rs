//! The identity key on native platforms: a file of 32 random bytes, readable only by its
//! owner, made on first start (see [`crate::options::ClientOptions::identity_file`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::event::ClientError;
use crate::identity::Identity;
use crate::machine::Pin;
use crate::small_map::SmallMap;

/// This user's identity from `file` (or the default place), made if there is none yet.
/// If it can be neither read nor made, a key for this run only, with a warning: chats
/// still work, but peers that pinned the lasting key will refuse this one.
pub(crate) fn load_or_create(user: &str, file: Option<&Path>) -> Identity {
    let path = file.map(Path::to_path_buf).or_else(|| default_path(user));
    let loaded = path
        .as_deref()
        .ok_or_else(|| "no data directory (neither XDG_DATA_HOME nor HOME is set)".to_owned())
        .and_then(read_or_make);
    match loaded {
        Ok(identity) => identity,
        Err(error) => {
            warn!(%error, "identity key not kept: using one for this run only");
            Identity::from_seed(fresh_seed())
        }
    }
}

/// The keys pinned for peers, in `<identity file>.pins` beside the identity key.
///
/// Written by a thread of its own, so the client's task never waits for a disk: pins that
/// change in a burst (a client meeting many peers at once) become one write of the whole
/// file, set aside, synced and renamed into place so a crash leaves the old or the new
/// file, never half of one. The thread writes what is left and ends when the client does.
pub(crate) struct PinFile {
    path: Option<PathBuf>,
    pins: SmallMap<String, Pin>,
    writer: Option<PinWriter>,
}

struct PinWriter {
    changes: std::sync::mpsc::Sender<(String, Option<Pin>)>,
    /// Resolved when the thread has written the last change and ended.
    done: futures::channel::oneshot::Receiver<()>,
}

impl PinFile {
    /// The pins kept for `user`. A file that does not read back whole is kept aside (and
    /// what could be read is written anew), with a notice to show the user; one that
    /// cannot be read at all is left alone and not written over.
    pub fn open(user: &str, identity_file: Option<&Path>) -> (Self, Option<ClientError>) {
        let path = identity_file
            .map(Path::to_path_buf)
            .or_else(|| default_path(user))
            .map(|identity| identity.with_extension("pins"));
        let mut file = Self {
            path,
            pins: SmallMap::new(),
            writer: None,
        };
        let Some(path) = file.path.clone() else {
            return (file, None);
        };
        let notice = |kept_aside: &str, reason: String| ClientError::PinsSetAside {
            location: path.display().to_string(),
            kept_aside: kept_aside.to_owned(),
            reason,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (file, None),
            Err(error) => {
                // Not ours to write over: this run keeps its pins in memory only.
                file.path = None;
                let notice = notice("(left in place, not written to)", error.to_string());
                return (file, Some(notice));
            }
        };
        let (pins, damage) = crate::pins::decode(&text);
        file.pins = pins;
        let Some(reason) = damage else {
            return (file, None);
        };
        let aside = path.with_extension(format!("pins.unreadable-{}", super::rt::wall_ms()));
        if let Err(error) = std::fs::rename(&path, &aside) {
            file.path = None;
            let reason = format!("{reason}; it could not be moved aside: {error}");
            return (
                file,
                Some(notice("(left in place, not written to)", reason)),
            );
        }
        if let Err(error) = write_pins(&path, &file.pins) {
            warn!(%error, path = %path.display(), "pinned keys not kept");
        }
        (file, Some(notice(&aside.display().to_string(), reason)))
    }

    pub fn pins(&self) -> &SmallMap<String, Pin> {
        &self.pins
    }

    /// Keeps `peer`'s pin (`None`: forgets it), written soon by the pins' own thread. A
    /// write that fails is logged: the pin still holds for this run.
    pub fn keep(&mut self, peer: String, pin: Option<Pin>) {
        let Some(path) = &self.path else {
            return;
        };
        if self.writer.is_none() {
            self.writer = start_writer(path.clone(), self.pins.clone());
        }
        let sent = (self.writer.as_ref()).is_some_and(|w| w.changes.send((peer, pin)).is_ok());
        if !sent {
            warn!(path = %path.display(), "pinned keys not kept: their writer is gone");
        }
    }

    /// Waits (briefly) until every pin kept so far is written.
    pub async fn closed(self) {
        let Some(PinWriter { changes, done }) = self.writer else {
            return;
        };
        drop(changes);
        let written = Box::pin(async {
            let _ = done.await;
        });
        futures::future::select(written, Box::pin(super::rt::sleep(PINS_GRACE))).await;
    }
}

/// How long a client that leaves waits for its last pins to be written.
const PINS_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The thread that writes `pins` to `path` as changes arrive; `None` if none can start.
fn start_writer(path: PathBuf, mut pins: SmallMap<String, Pin>) -> Option<PinWriter> {
    let (changes, arriving) = std::sync::mpsc::channel::<(String, Option<Pin>)>();
    let (finished, done) = futures::channel::oneshot::channel();
    let thread = std::thread::Builder::new().name("peerchat-pins".into());
    let started = thread.spawn(move || {
        while let Ok((peer, pin)) = arriving.recv() {
            crate::pins::set(&mut pins, peer, pin);
            // Everything else that changed meanwhile goes in the same write.
            while let Ok((peer, pin)) = arriving.try_recv() {
                crate::pins::set(&mut pins, peer, pin);
            }
            if let Err(error) = write_pins(&path, &pins) {
                warn!(%error, path = %path.display(), "pinned keys not kept");
            }
        }
        let _ = finished.send(());
    });
    match started {
        Ok(_) => Some(PinWriter { changes, done }),
        Err(error) => {
            warn!(%error, "no thread to write pinned keys: they last for this run only");
            None
        }
    }
}

/// Writes the whole pins file: set aside, synced, renamed into place.
fn write_pins(path: &Path, pins: &SmallMap<String, Pin>) -> std::io::Result<()> {
    let aside = path.with_extension(format!("pins-{}", std::process::id()));
    let _ = std::fs::remove_file(&aside);
    let written = write_private(&aside, crate::pins::encode(pins).as_bytes())
        .and_then(|()| std::fs::rename(&aside, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&aside);
    }
    written
}

fn default_path(user: &str) -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))?;
    Some(data.join("peerchat").join(format!("{user}.identity")))
}

fn read_or_make(path: &Path) -> Result<Identity, String> {
    let describe = |e: std::io::Error| format!("{}: {e}", path.display());
    match std::fs::read(path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("{}: not an identity key file", path.display()))?;
            return Ok(Identity::from_seed(seed));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(describe(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(describe)?;
    }
    // Written aside and linked into place, so two processes starting at once agree on
    // one key: the second link fails and that process reads the first one's file.
    let seed = fresh_seed();
    let aside = path.with_extension(format!("new-{}", std::process::id()));
    let written = write_private(&aside, &seed[..]);
    let linked = written.and_then(|()| std::fs::hard_link(&aside, path));
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(Identity::from_seed(seed)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_or_make(path),
        Err(e) => Err(describe(e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// 32 bytes from the operating system's random source.
fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system provides random bytes");
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_kept_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("peerchat-identity-{}", std::process::id()));
        let file = dir.join("alice.identity");
        let first = load_or_create("alice", Some(&file));
        let again = load_or_create("alice", Some(&file));
        assert_eq!(first.public(), again.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&file, b"short").unwrap();
        let other = load_or_create("alice", Some(&file));
        assert_ne!(
            other.public(),
            first.public(),
            "a broken file gives a run-only key"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Lets `pins` write what it holds, as a client that leaves does (on Tokio, as there).
    fn closed(pins: PinFile) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        runtime.unwrap().block_on(pins.closed());
    }

    fn pin(key: crate::identity::PublicKey, verified: bool) -> Option<Pin> {
        Some(Pin {
            key,
            verified,
            seal_version: 2,
        })
    }

    #[test]
    fn pins_are_kept_beside_the_identity_and_read_back() {
        let dir = std::env::temp_dir().join(format!("peerchat-pins-{}", std::process::id()));
        let file = dir.join("alice.identity");
        let key = Identity::from_seed([7; 32]).public();
        let (mut pins, notice) = PinFile::open("alice", Some(&file));
        assert_eq!(notice, None);
        pins.keep("bob".into(), pin(key, true));
        pins.keep("eve".into(), pin(key, false));
        pins.keep("eve".into(), None);
        closed(pins);
        let (again, notice) = PinFile::open("alice", Some(&file));
        assert_eq!(notice, None);
        assert_eq!(again.pins().len(), 1);
        assert_eq!(Some(again.pins()["bob"].clone()), pin(key, true));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_pins_file_is_kept_aside_and_said_so_not_dropped() {
        let dir = std::env::temp_dir().join(format!("peerchat-badpins-{}", std::process::id()));
        let file = dir.join("alice.identity");
        let key = Identity::from_seed([7; 32]).public();
        let (mut pins, _) = PinFile::open("alice", Some(&file));
        pins.keep("bob".into(), pin(key, true));
        closed(pins);
        let pins_path = file.with_extension("pins");
        // Half a file, as a full disk might leave it.
        let text = std::fs::read_to_string(&pins_path).unwrap();
        std::fs::write(&pins_path, &text[..text.len() / 2]).unwrap();
        let (pins, notice) = PinFile::open("alice", Some(&file));
        let Some(ClientError::PinsSetAside { kept_aside, .. }) = notice else {
            panic!("no notice: {notice:?}");
        };
        assert!(pins.pins().is_empty());
        assert_eq!(
            std::fs::read_to_string(&kept_aside).unwrap(),
            text[..text.len() / 2],
            "the damaged file is kept as it was"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

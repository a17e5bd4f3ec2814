//! The identity key on native platforms: a file of 32 random bytes, readable only by its
//! owner, made on first start (see [`crate::options::ClientOptions::identity_file`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::warn;

use std::collections::BTreeMap;

use crate::identity::Identity;
use crate::machine::Pin;

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
pub(crate) struct PinFile {
    path: Option<PathBuf>,
    pins: BTreeMap<String, Pin>,
}

impl PinFile {
    pub fn open(user: &str, identity_file: Option<&Path>) -> Self {
        let path = identity_file
            .map(Path::to_path_buf)
            .or_else(|| default_path(user))
            .map(|identity| identity.with_extension("pins"));
        let text = path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok());
        let pins = text.as_deref().map(crate::pins::decode).unwrap_or_default();
        Self { path, pins }
    }

    pub fn pins(&self) -> &BTreeMap<String, Pin> {
        &self.pins
    }

    /// Keeps `peer`'s pin (`None`: forgets it), writing the file anew. A write that fails is
    /// logged: the pin still holds for this run.
    pub fn keep(&mut self, peer: String, pin: Option<Pin>) {
        crate::pins::set(&mut self.pins, peer, pin);
        let Some(path) = &self.path else {
            return;
        };
        let aside = path.with_extension(format!("pins-{}", std::process::id()));
        let written = write_private(&aside, crate::pins::encode(&self.pins).as_bytes())
            .and_then(|()| std::fs::rename(&aside, path));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&aside);
            warn!(%error, path = %path.display(), "pinned keys not kept");
        }
    }
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

    #[test]
    fn pins_are_kept_beside_the_identity_and_read_back() {
        let dir = std::env::temp_dir().join(format!("peerchat-pins-{}", std::process::id()));
        let file = dir.join("alice.identity");
        let key = Identity::from_seed([7; 32]).public();
        let mut pins = PinFile::open("alice", Some(&file));
        pins.keep(
            "bob".into(),
            Some(Pin {
                key,
                verified: true,
            }),
        );
        pins.keep(
            "eve".into(),
            Some(Pin {
                key,
                verified: false,
            }),
        );
        pins.keep("eve".into(), None);
        let again = PinFile::open("alice", Some(&file));
        assert_eq!(again.pins().len(), 1);
        assert_eq!(
            again.pins()["bob"],
            Pin {
                key,
                verified: true
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

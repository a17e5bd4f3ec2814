//! Where name bindings (name → identity key) outlive the server: one JSON file in the data
//! directory, replaced whole (written aside, then renamed) so a crash leaves the old or the
//! new file, never half of one.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use peerchat_core::identity::PublicKey;
use serde::{Deserialize, Serialize};

use super::registry::Binding;

/// The bindings file in a data directory.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("names.json")
}

#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    key: String,
    last_used: u64,
}

/// Reads the bindings kept in `path`; none when there is no file yet. A file that does not
/// parse is an error: starting without it would hand every name to whoever comes first.
pub fn load(path: &Path) -> io::Result<HashMap<String, Binding>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a names file: {e}", path.display()),
        )
    })?;
    entries
        .into_iter()
        .map(|entry| {
            let key = PublicKey::parse(&entry.key).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: `{}` has no valid key", path.display(), entry.name),
                )
            })?;
            let binding = Binding {
                key,
                last_used: entry.last_used,
            };
            Ok((entry.name, binding))
        })
        .collect()
}

/// Replaces the file at `path` with `bindings`.
pub fn save(path: &Path, bindings: &HashMap<String, Binding>) -> io::Result<()> {
    let mut entries: Vec<Entry> = (bindings.iter())
        .map(|(name, binding)| Entry {
            name: name.clone(),
            key: binding.key.to_text(),
            last_used: binding.last_used,
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let aside = path.with_extension("json.new");
    std::fs::write(&aside, serde_json::to_vec_pretty(&entries)?)?;
    std::fs::File::open(&aside)?.sync_all()?;
    std::fs::rename(&aside, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchat_core::identity::Identity;

    #[test]
    fn bindings_survive_a_save_and_a_load() {
        let dir = std::env::temp_dir().join(format!("peerchat-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = path_in(&dir);
        assert!(load(&path).unwrap().is_empty());
        let bindings = HashMap::from([(
            "alice".to_owned(),
            Binding {
                key: Identity::from_seed([3; 32]).public(),
                last_used: 42,
            },
        )]);
        save(&path, &bindings).unwrap();
        assert_eq!(load(&path).unwrap(), bindings);
        std::fs::write(&path, b"{broken").unwrap();
        assert!(load(&path).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}

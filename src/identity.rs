//! Persistent identities: an ed25519 key kept in a file, so that a node's peer id (and so the
//! address others paste, for the hub) survives restarts.
//!
//! The file holds the key in libp2p's protobuf encoding. It is created on first use with
//! owner-only permissions (0600, in a directory created 0700); an existing file that is not a
//! key is an error, never overwritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;

/// Why an identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file or its directory could not be read or written.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file exists but does not hold a key.
    #[error(
        "identity file {path} does not hold a libp2p key ({why}); move it away or choose another --identity"
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        why: String,
    },
    /// The directory of a given `--identity` does not exist (it is not created: a typo in the
    /// path would otherwise silently make a new key somewhere unexpected).
    #[error(
        "identity file {}: the directory {} does not exist; create it, or choose another --identity",
        path.display(),
        dir.display()
    )]
    NoDirectory {
        /// The file.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// No default location could be worked out.
    #[error("no home directory for the default identity file; give --identity PATH")]
    NoHome,
}

/// The data directory: `$XDG_DATA_HOME/chitty-node`, or `$HOME/.local/share/chitty-node`.
pub fn data_dir() -> Result<PathBuf, IdentityError> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or(IdentityError::NoHome)?;
            PathBuf::from(home).join(".local").join("share")
        }
    };
    Ok(base.join("chitty-node"))
}

/// Where the hub keeps its key unless `--identity` says otherwise: `<data dir>/relay.key`.
pub fn default_relay_path(data: &Path) -> PathBuf {
    data.join("relay.key")
}

/// Where a participant keeps its key unless `--identity` says otherwise:
/// `<data dir>/identities/<username>.key`, the name spelled by [`file_stem`].
pub fn default_user_path(data: &Path, username: &str) -> PathBuf {
    data.join("identities")
        .join(format!("{}.key", file_stem(username)))
}

/// A username as part of a file name: every byte outside `A-Za-z0-9_-` written as `%XX`, so
/// that no name can reach outside its directory.
pub fn file_stem(username: &str) -> String {
    let mut file = String::new();
    for b in username.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            file.push(char::from(b));
        } else {
            file.push_str(&format!("%{b:02X}"));
        }
    }
    file
}

/// A key and the lock that says this process uses it.
#[derive(Debug)]
pub struct Identity {
    /// The key.
    pub keypair: Keypair,
    /// Held open for the life of the process: the lock is released when it is dropped.
    _lock: Option<fs::File>,
}

/// Loads or creates the key in `path` and locks it for this process. If another process holds
/// it (the same username started twice on one machine), a fresh key is used instead, with a
/// warning: two nodes must never share a peer id. `create_dirs`: the path is our default one,
/// whose directories are ours to create; a path the user gave must be in an existing directory.
pub fn load_locked(path: &Path, create_dirs: bool) -> Result<Identity, IdentityError> {
    if !create_dirs
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(IdentityError::NoDirectory {
            path: path.to_owned(),
            dir: dir.to_owned(),
        });
    }
    let keypair = load_or_create(path)?;
    let file = fs::File::open(path).map_err(io(path))?;
    match file.try_lock() {
        Ok(()) => Ok(Identity {
            keypair,
            _lock: Some(file),
        }),
        Err(fs::TryLockError::WouldBlock) => {
            tracing::warn!(path = %path.display(), "identity in use by another process; using a new key for this run");
            Ok(Identity {
                keypair: Keypair::generate_ed25519(),
                _lock: None,
            })
        }
        Err(fs::TryLockError::Error(e)) => Err(io(path)(e)),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the key in `path`, or creates one there if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<Keypair, IdentityError> {
    match fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| IdentityError::Decode {
            path: path.to_owned(),
            why: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(io(path)(e)),
    }
}

fn create(path: &Path) -> Result<Keypair, IdentityError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(io(path))?;
    }
    let key = Keypair::generate_ed25519();
    // Encoding an ed25519 key cannot fail.
    let bytes = key
        .to_protobuf_encoding()
        .expect("an ed25519 key encodes to protobuf");
    let mut o = fs::OpenOptions::new();
    // create_new: never overwrite a file that appeared meanwhile.
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(io(path))?;
    f.write_all(&bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    tracing::info!(path = %path.display(), peer = %key.public().to_peer_id(), "created identity");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_key_names_cannot_escape_the_directory() {
        let p = default_user_path(Path::new("/data"), "../../etc/é");
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(name, "%2E%2E%2F%2E%2E%2Fetc%2F%C3%A9.key");
        assert_eq!(p.parent().unwrap().file_name().unwrap(), "identities");
    }

    #[test]
    fn a_key_is_created_once_with_owner_only_permissions_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("chitty-id-{}", std::process::id()));
        let path = dir.join("sub").join("relay.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Locked: a second user of the same file gets a fresh key.
        let held = load_locked(&path, false).unwrap();
        let other = load_locked(&path, false).unwrap();
        assert_eq!(held.keypair.public().to_peer_id(), a.public().to_peer_id());
        assert_ne!(other.keypair.public().to_peer_id(), a.public().to_peer_id());
        drop(held);
        assert_eq!(
            load_locked(&path, false)
                .unwrap()
                .keypair
                .public()
                .to_peer_id(),
            a.public().to_peer_id()
        );
        let elsewhere = dir.join("missing").join("relay.key");
        assert!(matches!(
            load_locked(&elsewhere, false),
            Err(IdentityError::NoDirectory { .. })
        ));
        assert!(!dir.join("missing").exists(), "nothing created");
        fs::write(&path, b"not a key").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityError::Decode { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}

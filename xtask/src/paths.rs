//! Where things live: the workspace, the cache (outside the repository) and the running state.

use std::path::{Path, PathBuf};

/// The repository root (the workspace containing this crate).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
}

/// Builds and downloads, kept between runs: `$CHATSDK_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/chatsdk-operator`, else `~/.cache/chatsdk-operator`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CHATSDK_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("chatsdk-operator")
}

/// State of the running environment (data directories, logs, certificates, pid files).
pub fn state_dir() -> PathBuf {
    workspace_root().join("target").join("testenv")
}

/// The endpoints file that tests read (see `tests/src/endpoints.rs`).
pub fn endpoints_file() -> PathBuf {
    state_dir().join("endpoints.json")
}

//! Process limits. A chat server holds one file descriptor per client, and
//! the soft limit is often 1024 while the hard limit is far higher: raise it
//! at start-up so the server is limited by the machine, not by a default.

/// Raises the open-files soft limit to the hard limit; logs what it got.
pub fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open-files limit"),
    }
}

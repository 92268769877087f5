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

/// The open-files soft limit now (what the process may really open), or a
/// conservative 1024 when it cannot be read.
pub fn open_files_limit() -> u64 {
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _hard)) => soft,
        Err(error) => {
            tracing::warn!(%error, "could not read the open-files limit");
            1024
        }
    }
}

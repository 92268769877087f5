//! A descriptor kept in reserve for the moment the process runs out: then
//! `accept` fails while clients wait in the kernel's queue, a health check
//! among them, and the accept loop can neither serve nor refuse anyone.
//! Giving the spare back lets it accept one connection and answer it (a
//! health check is served, anything else refused at once), after which the
//! spare is taken again as soon as a descriptor frees up.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// `EMFILE` and `ENFILE`: the same numbers on Linux and the BSDs.
const OUT_OF_DESCRIPTORS: [i32; 2] = [24, 23];

/// Whether an `accept` failed for want of a file descriptor.
pub fn is_out_of_descriptors(error: &io::Error) -> bool {
    error
        .raw_os_error()
        .is_some_and(|code| OUT_OF_DESCRIPTORS.contains(&code))
}

/// How long the accept loop waits for the connection it freed a
/// descriptor for; it was waiting already, so it comes at once.
const ACCEPT_PATIENCE: Duration = Duration::from_millis(100);

/// The spare descriptor, when the process holds it.
pub struct SpareDescriptor {
    file: Option<File>,
}

impl SpareDescriptor {
    /// Opens the spare descriptor (holds none if the process is out of them already).
    pub fn open() -> SpareDescriptor {
        let mut spare = SpareDescriptor { file: None };
        spare.refill();
        spare
    }

    /// Takes the spare again if it was given away and a descriptor is free.
    pub fn refill(&mut self) {
        if self.file.is_none() {
            // Failing means the process is still out of descriptors: the
            // next loop iteration tries again.
            self.file = File::open("/dev/null").ok();
        }
    }

    /// Gives the spare back and accepts one waiting connection on it; `None`
    /// when there was no spare to give or nobody came.
    pub async fn accept_with_spare(
        &mut self,
        listener: &TcpListener,
    ) -> Option<(TcpStream, SocketAddr)> {
        drop(self.file.take()?);
        match tokio::time::timeout(ACCEPT_PATIENCE, listener.accept()).await {
            Ok(Ok(accepted)) => Some(accepted),
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

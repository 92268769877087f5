//! Closing a connection so that its last words arrive: stop writing, then
//! read and drop what the peer still sends until it hangs up. Closing a
//! socket with unread input makes the kernel reset the connection, and the
//! reset can destroy a close frame or an error response before the peer has
//! read it.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most a lingering peer may still send before it is cut off anyway.
const LINGER_BYTES: usize = 64 * 1024;

/// Shuts the write side of `io` down, then reads until the peer closes,
/// `LINGER_BYTES` were dropped, or `patience` ran out.
pub async fn linger<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, patience: Duration) {
    // Lingering is a courtesy to a peer that may be gone already: a failed
    // shutdown, a read error or the patience running out all end it alike.
    let _ = io.shutdown().await;
    let _ = tokio::time::timeout(patience, async {
        let mut scrap = [0u8; 1024];
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            match io.read(&mut scrap).await {
                Ok(0) | Err(_) => break,
                Ok(read) => dropped += read,
            }
        }
    })
    .await;
}

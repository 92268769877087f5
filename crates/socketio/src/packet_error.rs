//! What the runtime tells of a packet that does not follow the protocol
//! (Engine.IO or Socket.IO): logged, and the session closed.

use std::fmt;

/// A packet the client should not have sent, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct PacketError(pub(crate) &'static str);

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for PacketError {}

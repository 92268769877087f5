//! The formats only the load generator needs, each free of I/O: the stamp
//! its messages carry, and cheap views of the frames it measures. The
//! protocols' own wire formats are in `wire_clients::codec`.

pub mod probe;
pub mod stamp;

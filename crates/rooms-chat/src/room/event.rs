//! What a member can see of a room: a message, a join, a leave, a typing
//! notice; each with its place in the room's order.
//!
//! Every event but `typing` takes the room's next position (`pos`, dense
//! per room, shared by every kind), so one line orders all of them and a
//! member never reads "bob left" above "bob: bye". Message ids stay the
//! contract's own dense sequence, beside the position. A `typing` notice
//! takes no position: it carries the position of the last event before it
//! and is delivered only to a line that has delivered that far (volatile).
//!
//! The event's wire JSON (`json`) is built once, by whoever fixed its place,
//! and its frame once per instance, for every local member (see
//! `outgoing`).

use crate::room::outgoing::Sent;
use anyhow::{Context, Result, bail};
use protocol::rooms::server_event;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::{Arc, OnceLock};

/// The kind of a room event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `message`, with its id.
    Message {
        /// The message's id, the contract's dense sequence per room.
        id: u64,
    },
    /// `user_joined`: to the others.
    Joined,
    /// `user_left`: to the others.
    Left,
    /// `typing`: to the others; volatile.
    Typing,
}

impl Kind {
    /// The Socket.IO event name of the frame.
    pub(crate) fn event_name(self) -> &'static str {
        match self {
            Kind::Message { .. } => server_event::MESSAGE,
            Kind::Joined => server_event::USER_JOINED,
            Kind::Left => server_event::USER_LEFT,
            Kind::Typing => server_event::TYPING,
        }
    }

    /// A volatile event may be dropped for a socket that is behind, is
    /// never replayed and takes no position of its own.
    pub(crate) fn is_volatile(self) -> bool {
        self == Kind::Typing
    }

    /// Whether the member the event is about does not receive it.
    pub(crate) fn is_for_the_others(self) -> bool {
        !matches!(self, Kind::Message { .. })
    }
}

/// One event of one room.
#[derive(Debug)]
pub struct RoomEvent {
    /// The room it happened in.
    pub room: String,
    /// Its place in the room's order; for a volatile event, the place of
    /// the last event before it.
    pub pos: u64,
    /// What happened.
    pub kind: Kind,
    /// The member who spoke, joined, left or types.
    pub name: String,
    /// The frame's payload, as the contract writes it.
    pub json: Box<RawValue>,
    /// Its frame, built the first time this instance sends it.
    pub(crate) sent: OnceLock<Sent>,
}

impl RoomEvent {
    /// An event whose place in the room's order was just fixed, with its
    /// wire JSON.
    pub(crate) fn new(
        room: &str,
        pos: u64,
        kind: Kind,
        name: &str,
        json: String,
    ) -> Result<Arc<RoomEvent>> {
        Ok(Arc::new(RoomEvent {
            room: room.to_owned(),
            pos,
            kind,
            name: name.to_owned(),
            json: RawValue::from_string(json).context("keep an event's JSON")?,
            sent: OnceLock::new(),
        }))
    }

    /// From its record on the Redis bus or in the room's log (see
    /// `cluster::schema`).
    pub(crate) fn from_record(record: &str) -> Result<Arc<RoomEvent>> {
        #[derive(Deserialize)]
        struct Record {
            kind: String,
            pos: u64,
            #[serde(default)]
            id: u64,
            room: String,
            name: String,
            data: Box<RawValue>,
        }
        let record: Record = serde_json::from_str(record).context("parse a room event")?;
        let kind = match record.kind.as_str() {
            "m" => Kind::Message { id: record.id },
            "j" => Kind::Joined,
            "l" => Kind::Left,
            "t" => Kind::Typing,
            other => bail!("unknown room event kind {other:?}"),
        };
        Ok(Arc::new(RoomEvent {
            room: record.room,
            pos: record.pos,
            kind,
            name: record.name,
            json: record.data,
            sent: OnceLock::new(),
        }))
    }

    /// The message id, for a message.
    pub fn message_id(&self) -> Option<u64> {
        match self.kind {
            Kind::Message { id } => Some(id),
            _ => None,
        }
    }
}

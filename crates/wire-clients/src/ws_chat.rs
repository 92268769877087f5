//! The ws-chat protocol from the client's side: JSON frames over one
//! WebSocket at `/ws`; a `hello` answered by a `welcome` (or an `error`),
//! then `message` frames both ways.

use crate::websocket::{WebSocket, next_text};
use anyhow::{Context, bail};
use futures::SinkExt;
use serde::Deserialize;
use std::borrow::Cow;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The chat's WebSocket path.
pub const PATH: &str = "/ws";

/// Sends one client frame, already JSON (any text, so tests can send bad
/// ones).
pub async fn send(websocket: &mut WebSocket, json: String) -> anyhow::Result<()> {
    websocket
        .send(Message::text(json))
        .await
        .context("sending a frame")
}

/// The two fields of a server frame that tell a welcome from a refusal.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

/// Sends `hello` (a `hello` frame's JSON) and returns the `welcome` that must answer it (the
/// server sends it before any live frame); an `error` frame is an error
/// carrying its code.
pub async fn hello(websocket: &mut WebSocket, hello: String) -> anyhow::Result<Utf8Bytes> {
    send(websocket, hello).await?;
    let frame = next_text(websocket)
        .await
        .context("waiting for the welcome")?;
    let answer: Answer = serde_json::from_str(&frame).context("a frame that is not JSON")?;
    match answer.kind.as_ref() {
        "welcome" => {}
        "error" => bail!("hello refused: {}", answer.code.unwrap_or_default()),
        other => bail!("a {other:?} frame instead of the welcome"),
    }
    Ok(frame)
}

//! The chat as the contract describes it, over real sockets to the real
//! binary: welcome, messages, joined / left, typing, names, takeover.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, start};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn hello_gets_a_welcome_with_the_users_and_an_empty_history() {
    let server = start(&[]).await;
    let (_alice, welcome) = Client::join(&server, " alice ").await;
    assert_eq!(welcome["you"]["name"], "alice", "names are trimmed");
    assert!(welcome["you"]["id"].is_string());
    assert_eq!(welcome["users"], json!([welcome["you"]]));
    assert_eq!(welcome["history"], json!([]));

    let (_bob, welcome) = Client::join(&server, "bob").await;
    let mut names: Vec<_> = welcome["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"]);
}

#[tokio::test]
async fn messages_reach_everyone_with_strictly_increasing_ids() {
    let server = start(&[]).await;
    let (mut alice, alice_welcome) = Client::join(&server, "alice").await;
    let (mut bob, bob_welcome) = Client::join(&server, "bob").await;
    assert_eq!(alice.next().await["type"], "joined");

    let mut last_id = 0;
    for (speaker, text) in [(0, "  hello bob  "), (1, "hi alice"), (0, "how are you?")] {
        let (sender, sender_welcome) = if speaker == 0 {
            (&mut alice, &alice_welcome)
        } else {
            (&mut bob, &bob_welcome)
        };
        sender.say(text).await;
        let at_alice = alice.next().await;
        let at_bob = bob.next().await;
        assert_eq!(at_alice, at_bob, "everyone gets the same frame");
        assert_eq!(at_alice["type"], "message");
        assert_eq!(at_alice["text"], text.trim(), "text is trimmed");
        assert_eq!(at_alice["from"], sender_welcome["you"]);
        assert!(at_alice["ts"].as_i64().unwrap() > 1_700_000_000_000);
        let id = at_alice["id"].as_u64().unwrap();
        assert!(id > last_id, "ids increase strictly: {id} after {last_id}");
        last_id = id;
    }

    let (_carol, welcome) = Client::join(&server, "carol").await;
    let history = welcome["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["text"], "hello bob");
    assert_eq!(history[1]["from"], bob_welcome["you"]);
    assert_eq!(history[2]["id"], last_id);
}

#[tokio::test]
async fn history_holds_the_last_fifty_messages_oldest_first() {
    let server = start(&[("MSG_RATE", "0")]).await;
    let (mut alice, _) = Client::join(&server, "alice").await;
    for n in 1..=60 {
        alice.say(&format!("message {n}")).await;
    }
    for _ in 1..=60 {
        alice.next_of("message").await;
    }
    let (_bob, welcome) = Client::join(&server, "bob").await;
    let history = welcome["history"].as_array().unwrap();
    assert_eq!(history.len(), 50);
    assert_eq!(history[0]["text"], "message 11");
    assert_eq!(history[49]["text"], "message 60");
    let ids: Vec<u64> = history.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
}

#[tokio::test]
async fn joined_and_left_go_to_the_others() {
    let server = start(&[]).await;
    let (mut alice, _) = Client::join(&server, "alice").await;
    let (bob, bob_welcome) = Client::join(&server, "bob").await;
    let joined = alice.next().await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["user"], bob_welcome["you"]);
    assert!(joined["ts"].is_i64());

    drop(bob);
    let left = alice.next().await;
    assert_eq!(left["type"], "left");
    assert_eq!(left["user"], bob_welcome["you"]);
    assert!(left["ts"].is_i64());

    // A name is free again once its holder left.
    let (_bob, _) = Client::join(&server, "Bob").await;
}

#[tokio::test]
async fn typing_is_relayed_to_the_others_only() {
    let server = start(&[]).await;
    let (mut alice, alice_welcome) = Client::join(&server, "alice").await;
    let (mut bob, _) = Client::join(&server, "bob").await;
    alice.next_of("joined").await;

    alice.send(json!({"type": "typing"})).await;
    let typing = bob.next().await;
    assert_eq!(
        typing,
        json!({"type": "typing", "user": alice_welcome["you"]})
    );
    alice.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_taken_name_is_refused_case_insensitively_and_the_socket_may_retry() {
    let server = start(&[]).await;
    let (mut alice, _) = Client::join(&server, "Alice").await;
    let mut other = Client::connect(&server).await;
    other.send(json!({"type": "hello", "name": "aLiCe"})).await;
    other.expect_error("name_taken").await;
    // Same clientId absent: no takeover either.
    other
        .send(json!({"type": "hello", "name": "ALICE", "clientId": "x"}))
        .await;
    other.expect_error("name_taken").await;

    other.send(json!({"type": "hello", "name": "alice2"})).await;
    let welcome = other.next().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["you"]["name"], "alice2");
    assert_eq!(alice.next_of("joined").await["user"]["name"], "alice2");
}

#[tokio::test]
async fn the_same_client_id_takes_its_name_over_silently() {
    let server = start(&[]).await;
    let hello = json!({"type": "hello", "name": "alice", "clientId": "tab-42"});
    let (mut first, first_welcome) = Client::join_as(&server, hello.clone()).await;
    let (mut bob, _) = Client::join(&server, "bob").await;
    first.next_of("joined").await;

    let (mut second, second_welcome) = Client::join_as(&server, hello).await;
    assert_eq!(
        second_welcome["you"], first_welcome["you"],
        "same user, same id"
    );
    assert_eq!(second_welcome["users"].as_array().unwrap().len(), 2);
    assert_eq!(
        first.closed().await,
        Some(CloseCode::Library(4000)),
        "the old socket is closed with the code that tells a page not to reconnect"
    );

    // Bob hears neither a leave nor a join: the next thing he sees is the
    // new socket's message.
    second.say("back again").await;
    let next = bob.next().await;
    assert_eq!(next["type"], "message", "{next}");
    assert_eq!(next["from"], first_welcome["you"]);
    assert_eq!(second.next().await["text"], "back again");
}

#[tokio::test]
async fn a_frame_for_a_socket_that_has_not_written_leaves_at_once() {
    // A write delay of an hour: a frame that waited for it would never come
    // within the test's timeouts, so what arrives left by need, not by clock.
    let server = start(&[("WRITE_DELAY_MS", "3600000")]).await;
    let (mut alice, _) = Client::join(&server, "alice").await;
    let (mut bob, _) = Client::join(&server, "bob").await;
    assert_eq!(alice.next().await["type"], "joined");
    bob.say("first").await;
    assert_eq!(bob.next().await["text"], "first");
}

#[tokio::test]
async fn frames_of_a_busy_chat_leave_together_at_the_next_tick_in_order() {
    let server = start(&[("WRITE_DELAY_MS", "200")]).await;
    let (mut alice, _) = Client::join(&server, "alice").await;
    for n in 0..5 {
        alice.say(&format!("m{n}")).await;
    }
    for n in 0..5 {
        assert_eq!(alice.next().await["text"], format!("m{n}"));
    }
}

#[tokio::test]
async fn a_burst_far_larger_than_one_wake_up_reaches_everyone_whole_and_in_order() {
    // Hundreds of frames published at once: a socket takes them in shares
    // per wake-up, and every share must hand over every frame.
    let server = start(&[("MSG_RATE", "0")]).await;
    let (mut reader, _) = Client::join(&server, "reader").await;
    let (mut bob, _) = Client::join(&server, "bob").await;
    reader.next_of("joined").await;
    const BURST: usize = 320;
    for n in 0..BURST {
        bob.send(serde_json::json!({"type": "message", "text": format!("burst {n}")}))
            .await;
    }
    for client in [&mut reader, &mut bob] {
        for n in 0..BURST {
            let frame = client.next_of("message").await;
            assert_eq!(frame["text"], format!("burst {n}"));
        }
    }
}

//! The room-state contract, run against both backends: the in-memory store
//! and the Redis store (on a private redis-server, and on a private
//! three-master Redis Cluster).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use protocol::rooms::LeaveReason;
use rooms_chat::cluster::{RedisStore, Settings};
use rooms_chat::health::Link;
use rooms_chat::metrics::Metrics;
use rooms_chat::room::event::Kind;
use rooms_chat::store::memory::MemoryStore;
use rooms_chat::store::{JoinOutcome, Joined, Joiner, Store, StoreEvent};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use testkit::SharedRedis;
use tokio::sync::mpsc::UnboundedReceiver;

fn member(name: &str, sid: &str, client_id: Option<&str>) -> Joiner {
    Joiner {
        name: name.into(),
        sid: sid.into(),
        client_id: client_id.map(Into::into),
        sub: None,
    }
}

async fn joined(store: &dyn Store, room: &str, member: &Joiner, since: Option<u64>) -> Joined {
    match store.join(room, member, since).await.unwrap() {
        JoinOutcome::Joined(joined) => joined,
        JoinOutcome::NameTaken => panic!("{} refused", member.name),
    }
}

async fn redis_store(
    redis: &SharedRedis,
    instance: &str,
) -> (RedisStore, UnboundedReceiver<StoreEvent>) {
    let settings = Settings {
        url: &redis.url(),
        instance: instance.into(),
        history_keep: 100,
        pubsub_capacity: 1024,
        timeout: Duration::from_secs(5),
        wait_replicas: 0,
    };
    let link = Arc::new(Link::cluster(instance.into(), Metrics::default()));
    RedisStore::connect(settings, link, Metrics::default())
        .await
        .unwrap()
}

/// Waits for the next event that `pick` accepts.
async fn next_event<T>(
    events: &mut UnboundedReceiver<StoreEvent>,
    mut pick: impl FnMut(StoreEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(found) = pick(events.recv().await.expect("events ended")) {
                return found;
            }
        }
    })
    .await
    .expect("no such event")
}

async fn names_are_unique_case_insensitively(store: &dyn Store) {
    let alice = member("Alice", "s1", None);
    let first = joined(store, "general", &alice, None).await;
    assert_eq!(first.members, vec!["Alice"]);
    assert!(!first.silent);
    assert_eq!(
        store
            .join("general", &member("aLICE", "s2", None), None)
            .await
            .unwrap(),
        JoinOutcome::NameTaken
    );
    // The same name is free in another room.
    joined(store, "random", &member("alice", "s2", None), None).await;
    // The same socket joining again is not a new member.
    assert!(joined(store, "general", &alice, None).await.silent);
    let bob = joined(store, "general", &member("bob", "s3", None), None).await;
    let mut names = bob.members.clone();
    names.sort();
    assert_eq!(names, vec!["Alice", "bob"]);
}

async fn only_the_holder_leaves(store: &dyn Store) {
    joined(store, "room", &member("carol", "s1", None), None).await;
    assert!(
        !store
            .leave("room", "carol", "someone-else", LeaveReason::Left)
            .await
            .unwrap()
    );
    assert!(
        store
            .leave("room", "CAROL", "s1", LeaveReason::Left)
            .await
            .unwrap()
    );
    assert!(
        !store
            .leave("room", "carol", "s1", LeaveReason::Left)
            .await
            .unwrap()
    );
    // The name is free again.
    joined(store, "room", &member("Carol", "s2", None), None).await;
}

async fn the_same_client_takes_its_name_over(
    store: &dyn Store,
    events: &mut UnboundedReceiver<StoreEvent>,
) {
    joined(
        store,
        "takeover",
        &member("dave", "old", Some("client-1")),
        None,
    )
    .await;
    // Another browser cannot.
    assert_eq!(
        store
            .join(
                "takeover",
                &member("dave", "intruder", Some("client-2")),
                None
            )
            .await
            .unwrap(),
        JoinOutcome::NameTaken
    );
    let again = joined(
        store,
        "takeover",
        &member("Dave", "new", Some("client-1")),
        None,
    )
    .await;
    assert!(again.silent, "the others must see no join");
    assert_eq!(again.members, vec!["Dave"]);
    let evicted = next_event(events, |event| match event {
        StoreEvent::Evicted { room, sid } => Some((room, sid)),
        _ => None,
    })
    .await;
    assert_eq!(evicted, ("takeover".to_owned(), "old".to_owned()));
    // The old socket's late disconnect does not remove the new one.
    assert!(
        !store
            .leave("takeover", "dave", "old", LeaveReason::Left)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .rooms()
            .await
            .unwrap()
            .iter()
            .find(|r| r.name == "takeover")
            .unwrap()
            .members,
        1
    );
}

/// A socket of a person proved by a token.
fn person(name: &str, sid: &str, sub: &str) -> Joiner {
    Joiner {
        sub: Some(sub.into()),
        ..member(name, sid, None)
    }
}

async fn count_in(store: &dyn Store, room: &str) -> u64 {
    let rooms = store.rooms().await.unwrap();
    rooms
        .iter()
        .find(|r| r.name == room)
        .map_or(0, |r| r.members)
}

async fn one_person_is_one_member_in_every_tab(store: &dyn Store) {
    let first = joined(store, "tabs", &person("Ada", "tab-1", "42"), None).await;
    assert!(!first.silent);
    let second = joined(store, "tabs", &person("Ada", "tab-2", "42"), None).await;
    assert!(second.silent, "the others must see no second join");
    assert_eq!(second.members, vec!["Ada"], "shown once");
    let third = joined(store, "tabs", &person("Ada", "tab-3", "42"), None).await;
    assert!(third.silent);
    // Another person under the same name is refused, as without tokens.
    assert_eq!(
        store
            .join("tabs", &person("ada", "tab-4", "43"), None)
            .await
            .unwrap(),
        JoinOutcome::NameTaken
    );
    assert_eq!(count_in(store, "tabs").await, 1);
    // The first tab, then a later one, leave: the person stays.
    for tab in ["tab-1", "tab-3"] {
        let left = store.leave("tabs", "Ada", tab, LeaveReason::Left).await;
        assert!(!left.unwrap(), "{tab} leaving is not the member leaving");
        assert_eq!(count_in(store, "tabs").await, 1);
    }
    // A tab that left cannot leave again; the last one takes the member.
    assert!(
        !store
            .leave("tabs", "Ada", "tab-1", LeaveReason::Left)
            .await
            .unwrap()
    );
    assert!(
        store
            .leave("tabs", "Ada", "tab-2", LeaveReason::Disconnected)
            .await
            .unwrap()
    );
    assert_eq!(count_in(store, "tabs").await, 0);
}

async fn history_follows_since(store: &dyn Store) {
    for n in 1..=60 {
        let message = store
            .append("history", "eve", &format!("m{n}"))
            .await
            .unwrap();
        assert_eq!(message.id, n);
    }
    let eve = member("eve", "s1", None);
    let fresh = joined(store, "history", &eve, None).await;
    assert_eq!(fresh.last_id, 60);
    let ids: Vec<u64> = fresh.history.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        (11..=60).collect::<Vec<_>>(),
        "the last 50, oldest first"
    );
    assert_eq!(fresh.history[0].text, "m11");
    let resumed = joined(store, "history", &eve, Some(5)).await;
    let ids: Vec<u64> = resumed.history.iter().map(|m| m.id).collect();
    assert_eq!(ids, (6..=60).collect::<Vec<_>>(), "everything after since");
    assert!(
        joined(store, "history", &eve, Some(60))
            .await
            .history
            .is_empty()
    );
    let after: Vec<u64> = store
        .history_after("history", 57)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(after, vec![58, 59, 60]);
}

/// Joins, messages, typing and leaves of a room come out in one order:
/// dense positions for all but typing, which follows the event before it.
async fn events_come_out_in_room_order(
    store: &dyn Store,
    events: &mut UnboundedReceiver<StoreEvent>,
) {
    let fay = member("fay", "f1", None);
    let joined = joined(store, "stream", &fay, None).await;
    for n in 0..3 {
        store
            .append("stream", "fay", &format!("s{n}"))
            .await
            .unwrap();
    }
    store.typing("stream", "fay", true).await.unwrap();
    assert!(
        store
            .leave("stream", "fay", "f1", LeaveReason::Left)
            .await
            .unwrap()
    );
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let event = next_event(events, |event| match event {
            StoreEvent::Room(event) if event.room == "stream" => Some(event),
            _ => None,
        })
        .await;
        seen.push((event.kind, event.pos));
    }
    let first = joined.position;
    assert_eq!(
        seen,
        vec![
            (Kind::Joined, first),
            (Kind::Message { id: 1 }, first + 1),
            (Kind::Message { id: 2 }, first + 2),
            (Kind::Message { id: 3 }, first + 3),
            (Kind::Typing, first + 3),
            (Kind::Left, first + 4),
        ]
    );
    let kept: Vec<u64> = store
        .events_after("stream", first + 1)
        .await
        .unwrap()
        .iter()
        .map(|event| event.pos)
        .collect();
    assert_eq!(
        kept,
        vec![first + 2, first + 3, first + 4],
        "typing is not kept"
    );
}

async fn rooms_count_members(store: &dyn Store) {
    joined(store, "b-room", &member("x", "s1", None), None).await;
    joined(store, "b-room", &member("y", "s2", None), None).await;
    joined(store, "a-room", &member("x", "s1", None), None).await;
    let rooms = store.rooms().await.unwrap();
    let counts: Vec<(&str, u64)> = rooms
        .iter()
        .filter(|room| room.name.ends_with("-room"))
        .map(|room| (room.name.as_str(), room.members))
        .collect();
    assert_eq!(counts, vec![("a-room", 1), ("b-room", 2)]);
    store
        .leave("a-room", "x", "s1", LeaveReason::Left)
        .await
        .unwrap();
    let rooms = store.rooms().await.unwrap();
    assert!(
        rooms.iter().all(|room| room.name != "a-room"),
        "empty rooms are not listed"
    );
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    let (store, mut events) = MemoryStore::new(100);
    names_are_unique_case_insensitively(&store).await;
    only_the_holder_leaves(&store).await;
    the_same_client_takes_its_name_over(&store, &mut events).await;
    one_person_is_one_member_in_every_tab(&store).await;
    history_follows_since(&store).await;
    events_come_out_in_room_order(&store, &mut events).await;
    rooms_count_members(&store).await;
}

async fn redis_store_keeps_the_contract(redis: SharedRedis) {
    let (store, mut events) = redis_store(&redis, "instance-a").await;
    names_are_unique_case_insensitively(&store).await;
    only_the_holder_leaves(&store).await;
    the_same_client_takes_its_name_over(&store, &mut events).await;
    one_person_is_one_member_in_every_tab(&store).await;
    history_follows_since(&store).await;
    events_come_out_in_room_order(&store, &mut events).await;
    rooms_count_members(&store).await;
}

/// One person with a tab on each of two instances is one member; when one
/// instance dies its tab goes, the member stays until its last tab leaves.
async fn one_person_on_two_instances_leaves_once(redis: SharedRedis) {
    let (alive, _) = redis_store(&redis, "alive").await;
    let (dead, _) = redis_store(&redis, "dying").await;
    let ttl = Duration::from_millis(300);
    beat(&alive, Duration::from_secs(30)).await;
    beat(&dead, ttl).await;
    joined(&alive, "spread", &person("Ada", "here", "42"), None).await;
    let there = joined(&dead, "spread", &person("ada", "there", "42"), None).await;
    assert!(there.silent);
    assert_eq!(there.members, vec!["Ada"]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(alive.claim_dead("dying").await.unwrap());
    let removed = alive.clean_up_after("dying").await.unwrap();
    assert!(
        removed.is_empty(),
        "the member still has a tab: {removed:?}"
    );
    assert_eq!(count_in(&alive, "spread").await, 1);
    assert!(
        alive
            .leave("spread", "Ada", "here", LeaveReason::Left)
            .await
            .unwrap(),
        "the last tab takes the member"
    );
    assert_eq!(count_in(&alive, "spread").await, 0);
}

async fn two_instances_never_share_an_id_or_a_name(redis: SharedRedis) {
    let (one, mut one_events) = redis_store(&redis, "one").await;
    let (two, _two_events) = redis_store(&redis, "two").await;
    // An instance hears the rooms it watches (the room line's first join
    // does this); "one" has no member in "race".
    one.watch().watch("race").await.unwrap();
    let (one, two) = (Arc::new(one), Arc::new(two));
    let mut tasks = Vec::new();
    for store in [one.clone(), two.clone()] {
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..200 {
                ids.push(store.append("race", "z", &format!("{n}")).await.unwrap().id);
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(all.insert(id), "id {id} given twice");
        }
    }
    assert_eq!(all, (1..=400).collect());
    // Every instance hears them in id order.
    let mut heard = Vec::new();
    while heard.len() < 400 {
        let id = next_event(&mut one_events, |event| match event {
            StoreEvent::Room(event) => event.message_id(),
            _ => None,
        })
        .await;
        heard.push(id);
    }
    assert_eq!(heard, (1..=400).collect::<Vec<_>>());

    // Both race for one name: exactly one wins.
    let (zed, other_zed) = (member("Zed", "s1", None), member("zed", "s2", None));
    let (a, b) = tokio::join!(
        one.join("names", &zed, None),
        two.join("names", &other_zed, None),
    );
    let winners = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|outcome| matches!(outcome, JoinOutcome::Joined(_)))
        .count();
    assert_eq!(winners, 1);
}

/// A join racing with another instance's messages: the joiner's instance
/// hears every event after the join's place (it subscribed before the
/// join took its place), so its line never waits on a gap it cannot see.
async fn a_join_hears_every_event_after_its_place(redis: SharedRedis) {
    let (one, mut one_events) = redis_store(&redis, "one").await;
    let (two, _two_events) = redis_store(&redis, "two").await;
    joined(&two, "busy", &member("talker", "t1", None), None).await;
    const COUNT: u64 = 300;
    let (started, underway) = tokio::sync::oneshot::channel();
    let talker = tokio::spawn(async move {
        let mut started = Some(started);
        for n in 0..COUNT {
            two.append("busy", "talker", &format!("{n}")).await.unwrap();
            if n == 10 {
                started.take().map(|started| started.send(()));
            }
        }
        two
    });
    underway.await.unwrap();
    let late = joined(&one, "busy", &member("late", "l1", None), None).await;
    let _two = talker.await.unwrap();
    let last = one
        .events_after("busy", 0)
        .await
        .unwrap()
        .last()
        .unwrap()
        .pos;
    assert!(late.position < last, "the join came after every message");
    let mut heard = Vec::new();
    while heard.last().is_none_or(|pos| *pos < last) {
        let pos = next_event(&mut one_events, |event| match event {
            StoreEvent::Room(event) if event.room == "busy" && event.pos > late.position => {
                Some(event.pos)
            }
            _ => None,
        })
        .await;
        heard.push(pos);
    }
    assert_eq!(heard, ((late.position + 1)..=last).collect::<Vec<_>>());
}

async fn beat(store: &RedisStore, ttl: Duration) -> bool {
    let control = store.shards().control().clone();
    store.heartbeat(&control, ttl).await.unwrap()
}

async fn a_dead_instance_is_claimed_once(redis: SharedRedis) {
    let (dead, _) = redis_store(&redis, "dead").await;
    let (alive_one, _) = redis_store(&redis, "alive-one").await;
    let (alive_two, _) = redis_store(&redis, "alive-two").await;
    let ttl = Duration::from_millis(300);
    assert!(!beat(&dead, ttl).await, "first beat");
    assert!(beat(&dead, ttl).await);
    beat(&alive_one, Duration::from_secs(30)).await;
    joined(&dead, "lobby", &member("ghost", "g1", None), None).await;
    joined(&dead, "attic", &member("ghost", "g1", None), None).await;
    joined(&alive_one, "lobby", &member("living", "l1", None), None).await;
    // Still alive: nobody may claim it.
    assert!(!alive_one.claim_dead("dead").await.unwrap());
    assert!(alive_one.is_alive("dead").await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!alive_one.is_alive("dead").await.unwrap());
    let (first, second) = tokio::join!(alive_one.claim_dead("dead"), alive_two.claim_dead("dead"));
    assert!(first.unwrap() ^ second.unwrap(), "claimed exactly once");
    assert_eq!(alive_one.departed().await.unwrap(), vec!["dead".to_owned()]);
    // Both clean up at once: each member is removed once in all.
    let (first, second) = tokio::join!(
        alive_one.clean_up_after("dead"),
        alive_two.clean_up_after("dead")
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut removed: Vec<_> = first.into_iter().chain(second).collect();
    removed.sort();
    assert_eq!(
        removed,
        vec![
            ("attic".to_owned(), "ghost".to_owned()),
            ("lobby".to_owned(), "ghost".to_owned())
        ],
        "each member reported once in all"
    );
    assert!(alive_one.departed().await.unwrap().is_empty());
    let rooms = alive_one.rooms().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!((rooms[0].name.as_str(), rooms[0].members), ("lobby", 1));
    assert!(
        !alive_one
            .instances()
            .await
            .unwrap()
            .contains(&"dead".to_owned())
    );
    // The name is free again.
    joined(&alive_two, "lobby", &member("Ghost", "g2", None), None).await;
}

/// After a failover each instance moves a room on from what it delivered,
/// and they may have delivered different amounts (one saw messages the
/// promoted replica lacks, the other did not): the first to get there jumps,
/// the others follow that jump, and no id is handed out twice.
async fn instances_resume_a_room_past_one_jump(redis: SharedRedis) {
    let (one, _) = redis_store(&redis, "one").await;
    let (two, _) = redis_store(&redis, "two").await;
    joined(&one, "hall", &member("ann", "s1", None), None).await;
    let mut last = 0;
    for _ in 0..3 {
        last = one.append("hall", "ann", "hi").await.unwrap().id;
    }
    let pos = one
        .events_after("hall", 0)
        .await
        .unwrap()
        .last()
        .unwrap()
        .pos;
    // Instance one delivered everything; two believes it saw two messages
    // more (lost with the old master).
    let first = one
        .resume_room("hall", last, pos, Vec::new())
        .await
        .unwrap();
    assert!(first > pos + 2, "the jump clears what anyone delivered");
    let appended = one.append("hall", "ann", "after").await.unwrap().id;
    assert!(appended > last + 2, "{appended} after {last}");
    let second = two
        .resume_room("hall", last + 2, pos + 2, Vec::new())
        .await
        .unwrap();
    assert_eq!(second, first, "the second instance follows the first jump");
    let next = two.append("hall", "ann", "again").await.unwrap().id;
    assert_eq!(next, appended + 1, "no jump back, no id twice");
    let after: Vec<u64> = one
        .events_after("hall", first)
        .await
        .unwrap()
        .iter()
        .map(|event| event.pos)
        .collect();
    assert_eq!(after, vec![first + 1, first + 2]);
}

testkit::on_one_redis_and_on_a_cluster!(
    redis_store_keeps_the_contract,
    instances_resume_a_room_past_one_jump,
    two_instances_never_share_an_id_or_a_name,
    a_dead_instance_is_claimed_once,
    a_join_hears_every_event_after_its_place,
    one_person_on_two_instances_leaves_once,
);

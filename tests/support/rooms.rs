//! Group rooms as the end-to-end tests drive them: one [`RoomMember`] face over
//! `peerchat-cli` processes and browser pages, and the one check of a room's messages that
//! tests of both kinds share.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::browser_client::BrowserClient;
use crate::{ChatClient, Cli};

/// A client that takes part in rooms, whatever it runs in.
pub trait RoomMember: ChatClient {
    /// Creates a room; returns its id.
    fn create_room(&mut self, name: &str) -> String;
    fn invite(&mut self, room: &str, peer: &str);
    fn send_to_room(&mut self, room: &str, text: &str);
    /// Every event this member has shown so far.
    fn shown(&self) -> &[Value];
}

impl RoomMember for Cli {
    fn create_room(&mut self, name: &str) -> String {
        self.command(&format!("/room create {name}"));
        let created = self.expect("room created", |e| e["event"] == "room_members");
        created["room"].as_str().expect("a room id").to_owned()
    }

    fn invite(&mut self, room: &str, peer: &str) {
        self.command(&format!("/room invite {room} {peer}"));
    }

    fn send_to_room(&mut self, room: &str, text: &str) {
        self.command(&format!("/room send {room} {text}"));
        let sent = self.expect("room_sent", |e| e["event"] == "room_sent");
        assert_eq!(sent["ok"], true, "{}: {sent}", self.user);
    }

    fn shown(&self) -> &[Value] {
        self.seen()
    }
}

impl RoomMember for BrowserClient {
    fn create_room(&mut self, name: &str) -> String {
        let script = "try { return [peerchat.createRoom(arguments[0]), null]; } \
                      catch (e) { return [null, String(e)]; }";
        let made = self.run(script, json!([name]));
        made[0]
            .as_str()
            .unwrap_or_else(|| panic!("{}: createRoom refused: {}", self.user(), made[1]))
            .to_owned()
    }

    fn invite(&mut self, room: &str, peer: &str) {
        let refused = self.run(
            "return peerchat.inviteToRoom(arguments[0], arguments[1]);",
            json!([room, peer]),
        );
        assert!(
            refused.is_null(),
            "{}: invite refused: {refused}",
            self.user()
        );
    }

    fn send_to_room(&mut self, room: &str, text: &str) {
        let refused = self.run(
            "return peerchat.sendToRoom(arguments[0], arguments[1]);",
            json!([room, text]),
        );
        assert!(
            refused.is_null(),
            "{}: room send refused: {refused}",
            self.user()
        );
    }

    fn shown(&self) -> &[Value] {
        self.seen()
    }
}

/// `members[0]` chats with every other member, makes a room and invites them all; returns
/// the room's id once every member counts every member.
pub fn room_of_all(members: &mut [&mut dyn RoomMember]) -> String {
    let names: Vec<String> = members.iter().map(|m| m.user().to_owned()).collect();
    let (creator, others) = members.split_first_mut().expect("a creator");
    for name in &names[1..] {
        creator.connect_to(name);
    }
    for name in &names[1..] {
        creator.expect_peer_connected(name);
    }
    let room = creator.create_room("everyone");
    for name in &names[1..] {
        creator.invite(&room, name);
    }
    for member in std::iter::once(creator).chain(others.iter_mut()) {
        member.expect("in the room with everyone", &|e: &Value| {
            e["event"] == "room_members"
                && e["room"] == room.as_str()
                && e["members"].as_array().map(Vec::len) == Some(names.len())
        });
    }
    room
}

/// Writes `count` messages into `room` from members in a scrambled turn, then checks that
/// every member got each message of the others once, that every receiver gives each
/// message the same place in the room's order (its Lamport time and author), and that each
/// author's messages keep the order they were written in. Returns that order's texts.
pub fn messages_in_one_order(
    members: &mut [&mut dyn RoomMember],
    room: &str,
    count: usize,
) -> Vec<String> {
    let names: Vec<String> = members.iter().map(|m| m.user().to_owned()).collect();
    // A step coprime with the member count: everyone writes, in a scrambled turn.
    let step = (2..)
        .find(|s| gcd(*s, names.len()) == 1)
        .expect("one exists");
    let author_of = |n: usize| (n * step + 1) % names.len();
    for n in 0..count {
        members[author_of(n)].send_to_room(room, &format!("message {n}"));
    }
    let number = |text: &str| -> usize {
        text.strip_prefix("message ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{text:?} is not a numbered message"))
    };
    let mut place: BTreeMap<usize, (u64, String)> = BTreeMap::new();
    for (i, member) in members.iter_mut().enumerate() {
        let others = (0..count).filter(|n| author_of(*n) != i).count();
        for _ in 0..others {
            member.expect("a room message", &|e: &Value| e["event"] == "room_message");
        }
        let got: Vec<&Value> = (member.shown().iter())
            .filter(|e| e["event"] == "room_message" && e["room"] == room)
            .collect();
        assert_eq!(got.len(), others, "{}: each message once", names[i]);
        for e in got {
            let n = number(e["text"].as_str().expect("text"));
            let key = (
                e["lamport"].as_u64().expect("lamport"),
                e["author"].as_str().expect("author").to_owned(),
            );
            assert_eq!(key.1, names[author_of(n)], "message {n}: its author");
            if let Some(before) = place.insert(n, key.clone()) {
                assert_eq!(before, key, "message {n}: one place in the order for all");
            }
        }
    }
    assert_eq!(place.len(), count, "every message reached the others");
    let mut order: Vec<(&(u64, String), usize)> = place.iter().map(|(n, k)| (k, *n)).collect();
    order.sort();
    for name in &names {
        let written: Vec<usize> = (order.iter())
            .filter(|(key, _)| key.1 == *name)
            .map(|(_, n)| *n)
            .collect();
        assert!(
            written.windows(2).all(|w| w[0] < w[1]),
            "{name}'s messages out of the order written: {written:?}"
        );
    }
    order.iter().map(|(_, n)| format!("message {n}")).collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

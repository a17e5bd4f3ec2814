//! Room messages: each signed by its author, numbered per author (1, 2, …) and stamped with
//! the author's Lamport time and the membership version it wrote under. Any member passes
//! any message on; nobody can alter one or write one in another's name.

use crate::identity::{Identity, signature_text};

use super::{MAX_LAMPORT, MAX_ROOM_TEXT_BYTES, Membership, Picture, RoomError, RoomId};

/// One message in a room, as written and signed by its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMessage {
    pub room: RoomId,
    pub author: String,
    /// The author's number for it: 1 for its first message in the room, then one more each.
    pub seq: u64,
    /// Its Lamport time: more than that of every message its author held when writing it,
    /// so the room's one order keeps replies after what they answer.
    pub lamport: u64,
    /// The membership version the author wrote under: it was a member then.
    pub members: u64,
    pub text: String,
    /// The picture it carries, if any: its bytes travel apart (see `picture`).
    pub picture: Option<Picture>,
    /// The author's Ed25519 signature (base64url) of [`RoomMessage::signed_bytes`].
    pub sig: String,
}

impl RoomMessage {
    /// `author`'s message, signed with its identity.
    pub fn signed(
        room: RoomId,
        author: &str,
        numbers: (u64, u64, u64),
        text: &str,
        identity: &Identity,
    ) -> Self {
        Self::signed_with(room, author, numbers, (text, None), identity)
    }

    /// `author`'s message with `picture` (or none), signed with its identity.
    pub fn signed_with(
        room: RoomId,
        author: &str,
        numbers: (u64, u64, u64),
        content: (&str, Option<Picture>),
        identity: &Identity,
    ) -> Self {
        let (seq, lamport, members) = numbers;
        let (text, picture) = content;
        let mut message = Self {
            room,
            author: author.to_owned(),
            seq,
            lamport,
            members,
            text: text.to_owned(),
            picture,
            sig: String::new(),
        };
        message.sig = signature_text(&identity.sign(&message.signed_bytes()));
        message
    }

    /// What the signature covers: every field but the signature. All but the text (which
    /// comes last) are free of newlines, so no two messages sign the same bytes; the prefix
    /// keeps a message from passing as a membership change, a seal or a proof. A text
    /// message signs what it signed before pictures existed (v1), so kept rooms and older
    /// members still verify it; one with a picture signs v2, which adds the picture's name,
    /// type, size and SHA-256 before the text.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let head = format!(
            "{}\n{}\n{}\n{}\n{}",
            self.room, self.author, self.seq, self.lamport, self.members
        );
        match &self.picture {
            None => format!("peerchat room message v1\n{head}\n{}", self.text),
            Some(p) => format!(
                "peerchat room message v2\n{head}\n{}\n{}\n{}\n{}\n{}",
                p.name, p.mime, p.size, p.sha256, self.text
            ),
        }
        .into_bytes()
    }

    /// Where it stands in the room's one order: by Lamport time, then by author.
    pub fn order(&self) -> (u64, &str) {
        (self.lamport, &self.author)
    }

    /// Checks it against `membership`: the right room, a bounded text, an author who was a
    /// member when it wrote this and had not left by then, and the author's own signature.
    pub fn verify(&self, membership: &Membership) -> Result<(), RoomError> {
        if self.room != *membership.room() {
            return Err(RoomError::WrongRoom {
                expected: membership.room().clone(),
                got: self.room.clone(),
            });
        }
        if self.text.len() > MAX_ROOM_TEXT_BYTES {
            return Err(RoomError::TextTooLarge {
                size: self.text.len(),
                limit: MAX_ROOM_TEXT_BYTES,
            });
        }
        if let Some(picture) = &self.picture {
            picture.check()?;
        }
        if self.lamport > MAX_LAMPORT {
            return Err(RoomError::ClockTooFar {
                author: self.author.clone(),
                seq: self.seq,
            });
        }
        if self.seq == 0 || self.lamport == 0 {
            return Err(RoomError::OutOfOrder {
                author: self.author.clone(),
                seq: self.seq,
            });
        }
        let key = membership.writer_key(&self.author, self.members, self.seq)?;
        membership.check_signature(&self.author, key, &self.signed_bytes(), &self.sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::Action;
    use crate::room::testing::identity;

    fn club() -> Membership {
        let mut room = Membership::create(
            RoomId::from_random([2; 16]),
            "club",
            "alice",
            &identity("alice"),
        )
        .unwrap();
        for member in ["bob", "carol"] {
            let key = identity(member).public();
            let invite = Action::Invite {
                member: member.into(),
                key,
            };
            room.make("alice", &identity("alice"), invite).unwrap();
        }
        room
    }

    fn message(room: &Membership, author: &str, signer: &str, text: &str) -> RoomMessage {
        RoomMessage::signed(
            room.room().clone(),
            author,
            (1, 1, 2),
            text,
            &identity(signer),
        )
    }

    #[test]
    fn a_members_own_message_verifies() {
        let room = club();
        assert_eq!(message(&room, "bob", "bob", "hi").verify(&room), Ok(()));
    }

    #[test]
    fn a_member_writing_in_another_members_name_is_named_as_the_forger() {
        let room = club();
        assert_eq!(
            message(&room, "alice", "bob", "I owe bob").verify(&room),
            Err(RoomError::Impersonation {
                claimed: "alice".into(),
                signer: "bob".into()
            })
        );
    }

    #[test]
    fn an_altered_message_or_a_strangers_is_refused() {
        let room = club();
        let mut altered = message(&room, "bob", "bob", "hi");
        altered.text = "bye".into();
        assert_eq!(
            altered.verify(&room),
            Err(RoomError::BadSignature { name: "bob".into() })
        );
        let mut renumbered = message(&room, "bob", "bob", "hi");
        renumbered.lamport = 9;
        assert!(matches!(
            renumbered.verify(&room),
            Err(RoomError::BadSignature { .. })
        ));
        assert!(matches!(
            message(&room, "mallory", "mallory", "let me in").verify(&room),
            Err(RoomError::NotAMember { .. })
        ));
    }

    #[test]
    fn a_message_for_another_room_or_too_long_is_refused() {
        let room = club();
        let mut elsewhere = message(&room, "bob", "bob", "hi");
        elsewhere.room = RoomId::from_random([3; 16]);
        assert!(matches!(
            elsewhere.verify(&room),
            Err(RoomError::WrongRoom { .. })
        ));
        let mut far = message(&room, "bob", "bob", "hi");
        far.lamport = MAX_LAMPORT + 1;
        far.sig = signature_text(&identity("bob").sign(&far.signed_bytes()));
        assert_eq!(
            far.verify(&room),
            Err(RoomError::ClockTooFar {
                author: "bob".into(),
                seq: 1
            })
        );
        let long = "x".repeat(MAX_ROOM_TEXT_BYTES + 1);
        assert!(matches!(
            message(&room, "bob", "bob", &long).verify(&room),
            Err(RoomError::TextTooLarge { .. })
        ));
    }

    #[test]
    fn a_removed_members_later_message_is_refused() {
        let mut room = club();
        let removal = Action::Remove {
            member: "bob".into(),
            last_seq: 0,
        };
        room.make("alice", &identity("alice"), removal).unwrap();
        assert_eq!(
            message(&room, "bob", "bob", "still here?").verify(&room),
            Err(RoomError::AfterRemoval {
                name: "bob".into(),
                seq: 1
            })
        );
    }

    fn with_picture(room: &Membership, text: &str) -> RoomMessage {
        let picture = Picture::of("cat.png", "image/png", b"meow").unwrap();
        RoomMessage::signed_with(
            room.room().clone(),
            "bob",
            (1, 1, 2),
            (text, Some(picture)),
            &identity("bob"),
        )
    }

    #[test]
    fn the_signature_covers_every_field_of_the_picture() {
        let room = club();
        assert_eq!(with_picture(&room, "look").verify(&room), Ok(()));
        let alterations: [fn(&mut Picture); 4] = [
            |p| p.name = "dog.png".into(),
            |p| p.mime = "image/gif".into(),
            |p| p.size += 1,
            |p| p.sha256 = crate::room::sha256_hex(b"woof"),
        ];
        for alter in alterations {
            let mut altered = with_picture(&room, "look");
            alter(altered.picture.as_mut().unwrap());
            assert_eq!(
                altered.verify(&room),
                Err(RoomError::BadSignature { name: "bob".into() })
            );
        }
        let mut stripped = with_picture(&room, "look");
        stripped.picture = None;
        assert!(matches!(
            stripped.verify(&room),
            Err(RoomError::BadSignature { .. })
        ));
        let mut added = message(&room, "bob", "bob", "look");
        added.picture = with_picture(&room, "look").picture;
        assert!(matches!(
            added.verify(&room),
            Err(RoomError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_signed_picture_beyond_the_bounds_is_refused() {
        let room = club();
        let mut big = with_picture(&room, "");
        big.picture.as_mut().unwrap().size = crate::room::MAX_ROOM_PICTURE_BYTES + 1;
        big.sig = signature_text(&identity("bob").sign(&big.signed_bytes()));
        assert!(matches!(
            big.verify(&room),
            Err(RoomError::PictureTooLarge { .. })
        ));
    }

    #[test]
    fn the_signed_bytes_are_the_documented_text() {
        let room = club();
        let message = message(&room, "bob", "bob", "hi\nthere");
        let expected = format!(
            "peerchat room message v1\n{}\nbob\n1\n1\n2\nhi\nthere",
            room.room()
        );
        assert_eq!(message.signed_bytes(), expected.into_bytes());
        let pictured = with_picture(&room, "look");
        let expected = format!(
            "peerchat room message v2\n{}\nbob\n1\n1\n2\ncat.png\nimage/png\n4\n{}\nlook",
            room.room(),
            crate::room::sha256_hex(b"meow")
        );
        assert_eq!(pictured.signed_bytes(), expected.into_bytes());
    }
}

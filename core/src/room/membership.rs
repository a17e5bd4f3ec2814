//! Who is in a room and who may change that: a chain of membership changes, each signed by
//! the member who made it and numbered one after the other (the room's membership version).
//! Every member applies the same chain, so all agree on who was a member at each version.
//!
//! The creator makes version 0. The creator and the admins it names invite, promote and
//! remove; any member may leave. A member who leaves or is removed does so after a given
//! message of its own (`last_seq`): whatever it writes later is refused by everyone, even
//! if it claims an older version, since its numbers cannot go back. A former member may be
//! invited again: its numbers go on from `last_seq`, so each of its messages still has one
//! number and falls in exactly one of its stays.

use crate::identity::{Identity, PublicKey, signature_text};
use crate::protocol::validate_username;
use crate::small_map::SmallMap;

use super::{MAX_LAMPORT, MAX_MEMBER_CHANGES, MAX_MEMBERS, RoomError, RoomId, validate_room_name};

/// What one membership change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Version 0: the room exists, named `name`, with its creator (the change's `by`) as
    /// its first member, holding `key`.
    Create { name: String, key: PublicKey },
    /// `member`, holding identity key `key`, joins.
    Invite { member: String, key: PublicKey },
    /// `member` may invite, promote and remove from now on.
    Promote { member: String },
    /// `member` is out; messages of its numbered above `last_seq` are refused.
    Remove { member: String, last_seq: u64 },
    /// The change's author leaves after its message `last_seq`.
    Leave { last_seq: u64 },
}

impl Action {
    /// The action's name in signed bytes and on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Invite { .. } => "invite",
            Self::Promote { .. } => "promote",
            Self::Remove { .. } => "remove",
            Self::Leave { .. } => "leave",
        }
    }
}

/// One signed step of a room's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub room: RoomId,
    /// Its place in the chain: 0 for the creation, each next change one more.
    pub version: u64,
    /// The member who made it and signed it.
    pub by: String,
    pub action: Action,
    /// `by`'s Ed25519 signature (base64url) of [`MemberChange::signed_bytes`].
    pub sig: String,
}

impl MemberChange {
    /// What the signature covers. Room id, numbers, validated names and a key hold no
    /// newline, and the room name (which might) comes last, so no two changes sign the same
    /// bytes; the prefix keeps a change from ever passing as a seal, a proof or a message.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let (member, key, last_seq, name) = match &self.action {
            Action::Create { name, key } => ("", key.to_text(), String::new(), name.as_str()),
            Action::Invite { member, key } => (member.as_str(), key.to_text(), String::new(), ""),
            Action::Promote { member } => (member.as_str(), String::new(), String::new(), ""),
            Action::Remove { member, last_seq } => {
                (member.as_str(), String::new(), last_seq.to_string(), "")
            }
            Action::Leave { last_seq } => ("", String::new(), last_seq.to_string(), ""),
        };
        format!(
            "peerchat room change v1\n{}\n{}\n{}\n{}\n{member}\n{key}\n{last_seq}\n{name}",
            self.room,
            self.version,
            self.by,
            self.action.kind(),
        )
        .into_bytes()
    }

    fn signed(room: RoomId, version: u64, by: &str, action: Action, identity: &Identity) -> Self {
        let mut change = Self {
            room,
            version,
            by: by.to_owned(),
            action,
            sig: String::new(),
        };
        change.sig = signature_text(&identity.sign(&change.signed_bytes()));
        change
    }
}

/// A member as the chain describes it: each of its stays in the room, the last one first
/// to look at.
#[derive(Debug, Clone)]
struct Member {
    admin: bool,
    stays: Vec<Stay>,
}

/// One time a member was in the room, from an invitation to a departure.
#[derive(Debug, Clone)]
struct Stay {
    /// The key it signed with then (a member invited again may come with a new device).
    key: PublicKey,
    /// The version that let it in.
    joined: u64,
    /// Its first message number in this stay: one more than its last in the one before.
    first_seq: u64,
    /// When it left or was removed: at which version, after which of its messages.
    gone: Option<(u64, u64)>,
}

impl Member {
    fn new(key: PublicKey, joined: u64, first_seq: u64) -> Self {
        Self {
            admin: false,
            stays: vec![Stay {
                key,
                joined,
                first_seq,
                gone: None,
            }],
        }
    }

    fn last_stay(&self) -> &Stay {
        self.stays.last().expect("a member has had a stay")
    }

    fn is_in(&self) -> bool {
        self.last_stay().gone.is_none()
    }
}

/// A room's membership: the chain of changes and who it makes a member.
#[derive(Debug, Clone)]
pub struct Membership {
    room: RoomId,
    name: String,
    creator: String,
    members: SmallMap<String, Member>,
    changes: Vec<MemberChange>,
}

impl Membership {
    /// A new room of `creator`'s, signed by it.
    pub fn create(
        room: RoomId,
        name: &str,
        creator: &str,
        identity: &Identity,
    ) -> Result<Self, RoomError> {
        let action = Action::Create {
            name: name.to_owned(),
            key: identity.public(),
        };
        Self::from_changes(vec![MemberChange::signed(
            room, 0, creator, action, identity,
        )])
    }

    /// The membership that `changes` (a whole chain, from the creation) make; each is
    /// checked as [`Membership::apply`] checks it.
    pub fn from_changes(changes: Vec<MemberChange>) -> Result<Self, RoomError> {
        let mut changes = changes.into_iter();
        let first = changes.next().ok_or(RoomError::BadChange("no creation"))?;
        let Action::Create { name, key } = &first.action else {
            return Err(RoomError::BadChange(
                "the chain does not start with a creation",
            ));
        };
        if first.version != 0 {
            return Err(RoomError::BadChange("a creation is version 0"));
        }
        validate_room_name(name)?;
        validate_member_name(&first.by)?;
        if !key.verifies(&first.signed_bytes(), &first.sig) {
            return Err(RoomError::BadSignature {
                name: first.by.clone(),
            });
        }
        let creator = Member {
            admin: true,
            ..Member::new(*key, 0, 1)
        };
        let mut membership = Self {
            room: first.room.clone(),
            name: name.clone(),
            creator: first.by.clone(),
            members: SmallMap::from([(first.by.clone(), creator)]),
            changes: vec![first],
        };
        for change in changes {
            membership.apply(change)?;
        }
        Ok(membership)
    }

    pub fn room(&self) -> &RoomId {
        &self.room
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn creator(&self) -> &str {
        &self.creator
    }

    /// The version of the latest change applied.
    pub fn version(&self) -> u64 {
        self.changes.len() as u64 - 1
    }

    /// The whole chain, from the creation.
    pub fn changes(&self) -> &[MemberChange] {
        &self.changes
    }

    /// The changes a member at `version` lacks (all of them for `None`: not a member yet).
    pub fn changes_after(&self, version: Option<u64>) -> &[MemberChange] {
        let from = version.map_or(0, |version| version.saturating_add(1));
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        self.changes.get(from..).unwrap_or_default()
    }

    /// The current members and their keys, by name.
    pub fn members(&self) -> impl Iterator<Item = (&str, &PublicKey)> {
        self.members
            .iter()
            .filter(|(_, member)| member.is_in())
            .map(|(name, member)| (name.as_str(), &member.last_stay().key))
    }

    pub fn is_member(&self, name: &str) -> bool {
        self.members.get(name).is_some_and(Member::is_in)
    }

    /// Whether `name` was ever let in (a current or a former member).
    pub fn ever_member(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    pub fn is_admin(&self, name: &str) -> bool {
        self.members
            .get(name)
            .is_some_and(|member| member.admin && member.is_in())
    }

    /// The version at which `name` last left or was removed, and its last message then.
    pub fn departure(&self, name: &str) -> Option<(u64, u64)> {
        self.members
            .get(name)
            .and_then(|member| member.last_stay().gone)
    }

    /// Signs `action` as `by` and applies it: the next version of the chain.
    pub fn make(
        &mut self,
        by: &str,
        identity: &Identity,
        action: Action,
    ) -> Result<MemberChange, RoomError> {
        let version = self.version() + 1;
        let change = MemberChange::signed(self.room.clone(), version, by, action, identity);
        self.apply(change.clone())?;
        Ok(change)
    }

    /// Applies the next change of the chain after checking it: the right room and version,
    /// signed by its author, who may make it. `Ok(false)`: it is one already applied.
    pub fn apply(&mut self, change: MemberChange) -> Result<bool, RoomError> {
        if change.room != self.room {
            return Err(RoomError::WrongRoom {
                expected: self.room.clone(),
                got: change.room,
            });
        }
        let have = self.version();
        if change.version <= have {
            return match self.changes.get(change.version as usize) {
                Some(held) if *held == change => Ok(false),
                _ => Err(RoomError::ConflictingChange {
                    version: change.version,
                }),
            };
        }
        if change.version != have + 1 {
            return Err(RoomError::ChangeGap {
                have,
                got: change.version,
            });
        }
        if self.changes.len() >= MAX_MEMBER_CHANGES {
            return Err(RoomError::TooManyChanges {
                limit: MAX_MEMBER_CHANGES,
            });
        }
        let author = self.member_at(&change.by, have)?;
        let key = author.last_stay().key;
        self.check_signature(&change.by, key, &change.signed_bytes(), &change.sig)?;
        // The creator's power lasts its first stay: back after leaving, it is a member like
        // any other, as an admin who left is.
        let may_manage = (change.by == self.creator && author.stays.len() == 1) || author.admin;
        let denied = |what| RoomError::NotAllowed {
            by: change.by.clone(),
            what,
        };
        match &change.action {
            Action::Create { .. } => return Err(RoomError::BadChange("a second creation")),
            Action::Invite { member, .. } => {
                if !may_manage {
                    return Err(denied("invite"));
                }
                validate_member_name(member)?;
                if self.is_member(member) {
                    return Err(RoomError::AlreadyMember {
                        name: member.clone(),
                    });
                }
                if self.members().count() >= MAX_MEMBERS {
                    return Err(RoomError::RoomFull { limit: MAX_MEMBERS });
                }
            }
            Action::Promote { member } => {
                if !may_manage {
                    return Err(denied("promote"));
                }
                self.member_at(member, have)?;
            }
            Action::Remove { member, .. } => {
                if !may_manage {
                    return Err(denied("remove members"));
                }
                if *member == self.creator || *member == change.by {
                    return Err(denied("remove the creator or itself (leave instead)"));
                }
                self.member_at(member, have)?;
            }
            Action::Leave { .. } => {}
        }
        // A member's numbers never pass the Lamport bound (each is at most its message's
        // Lamport time), so neither does the last one that counts.
        if let Action::Remove { last_seq, .. } | Action::Leave { last_seq } = &change.action
            && *last_seq > MAX_LAMPORT
        {
            return Err(RoomError::BadChange("a last message number past the bound"));
        }
        let version = change.version;
        match &change.action {
            Action::Create { .. } => {}
            Action::Invite { member, key } => match self.members.get_mut(member) {
                // Back again: a new stay, its numbers going on from the last one's, and
                // whatever it could do before to be given again.
                Some(former) => {
                    let (_, last_seq) = former.last_stay().gone.expect("checked: not in");
                    former.admin = false;
                    former.stays.push(Stay {
                        key: *key,
                        joined: version,
                        first_seq: last_seq.saturating_add(1),
                        gone: None,
                    });
                }
                None => {
                    let joined = Member::new(*key, version, 1);
                    self.members.insert(member.clone(), joined);
                }
            },
            Action::Promote { member } => self.set(member, |m| m.admin = true),
            Action::Remove { member, last_seq } => self.depart(member, version, *last_seq),
            Action::Leave { last_seq } => {
                let by = change.by.clone();
                self.depart(&by, version, *last_seq)
            }
        }
        self.changes.push(change);
        Ok(true)
    }

    /// The key `name` writes room messages with, if it may write message `seq` under
    /// membership version `version`: it was a member then, and had not left before `seq`;
    /// for a member invited again, the stay the number falls in.
    pub fn writer_key(&self, name: &str, version: u64, seq: u64) -> Result<PublicKey, RoomError> {
        let have = self.version();
        if version > have {
            return Err(RoomError::MembershipBehind {
                have,
                needs: version,
            });
        }
        let not_a_member = || RoomError::NotAMember {
            name: name.to_owned(),
            version,
        };
        let member = self.members.get(name).ok_or_else(not_a_member)?;
        // The stay it wrote in, by the version it wrote under; its number must fall in it.
        let stay = (member.stays.iter().rev())
            .find(|stay| stay.joined <= version)
            .ok_or_else(not_a_member)?;
        let departed = stay
            .gone
            .is_some_and(|(gone_at, last_seq)| version >= gone_at || seq > last_seq);
        if departed || seq < stay.first_seq {
            return Err(RoomError::AfterRemoval {
                name: name.to_owned(),
                seq,
            });
        }
        Ok(stay.key)
    }

    /// Checks that `signature` is `name`'s (holding `key`) over `bytes`. When it is another
    /// member's instead, that member tried to speak for `name`, and is named.
    pub fn check_signature(
        &self,
        name: &str,
        key: PublicKey,
        bytes: &[u8],
        signature: &str,
    ) -> Result<(), RoomError> {
        if key.verifies(bytes, signature) {
            return Ok(());
        }
        let signer = self.members.iter().find(|(_, member)| {
            (member.stays.iter()).any(|stay| stay.key.verifies(bytes, signature))
        });
        Err(match signer {
            Some((signer, _)) => RoomError::Impersonation {
                claimed: name.to_owned(),
                signer: signer.clone(),
            },
            None => RoomError::BadSignature {
                name: name.to_owned(),
            },
        })
    }

    /// `name` as a current member at the latest version.
    fn member_at(&self, name: &str, version: u64) -> Result<&Member, RoomError> {
        self.members
            .get(name)
            .filter(|member| member.is_in())
            .ok_or_else(|| RoomError::NotAMember {
                name: name.to_owned(),
                version,
            })
    }

    fn set(&mut self, name: &str, change: impl FnOnce(&mut Member)) {
        if let Some(member) = self.members.get_mut(name) {
            change(member);
        }
    }

    fn depart(&mut self, name: &str, version: u64, last_seq: u64) {
        self.set(name, |member| {
            if let Some(stay) = member.stays.last_mut() {
                stay.gone = Some((version, last_seq));
            }
        });
    }
}

fn validate_member_name(name: &str) -> Result<(), RoomError> {
    validate_username(name).map_err(|error| RoomError::InvalidMemberName {
        name: name.chars().take(80).collect(),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::testing::identity;

    fn room() -> Membership {
        Membership::create(
            RoomId::from_random([1; 16]),
            "club",
            "alice",
            &identity("alice"),
        )
        .unwrap()
    }

    fn invite(room: &mut Membership, by: &str, member: &str) -> Result<MemberChange, RoomError> {
        let key = identity(member).public();
        room.make(
            by,
            &identity(by),
            Action::Invite {
                member: member.into(),
                key,
            },
        )
    }

    #[test]
    fn the_creator_invites_and_every_replica_of_the_chain_agrees() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        invite(&mut room, "alice", "carol").unwrap();
        assert_eq!(room.version(), 2);
        let copy = Membership::from_changes(room.changes().to_vec()).unwrap();
        let names = |m: &Membership| m.members().map(|(n, _)| n.to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&copy), ["alice", "bob", "carol"]);
        assert_eq!(names(&copy), names(&room));
        assert_eq!(room.changes_after(Some(0)).len(), 2);
        assert_eq!(room.changes_after(None).len(), 3);
        assert!(room.changes_after(Some(2)).is_empty());
    }

    #[test]
    fn only_the_creator_and_admins_change_membership() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        assert!(matches!(
            invite(&mut room, "bob", "carol"),
            Err(RoomError::NotAllowed { .. })
        ));
        room.make(
            "alice",
            &identity("alice"),
            Action::Promote {
                member: "bob".into(),
            },
        )
        .unwrap();
        invite(&mut room, "bob", "carol").unwrap();
        assert!(room.is_member("carol"));
        let removal = Action::Remove {
            member: "alice".into(),
            last_seq: 0,
        };
        assert!(matches!(
            room.make("bob", &identity("bob"), removal),
            Err(RoomError::NotAllowed { .. })
        ));
    }

    #[test]
    fn a_non_member_cannot_change_anything() {
        let mut room = room();
        assert!(matches!(
            invite(&mut room, "mallory", "eve"),
            Err(RoomError::NotAMember { .. })
        ));
        assert_eq!(room.version(), 0);
    }

    #[test]
    fn a_change_signed_by_someone_else_is_refused_and_names_the_signer() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        // bob signs an invitation in alice's name.
        let mut forged = MemberChange::signed(
            room.room().clone(),
            2,
            "alice",
            Action::Invite {
                member: "eve".into(),
                key: identity("eve").public(),
            },
            &identity("bob"),
        );
        assert_eq!(
            room.apply(forged.clone()),
            Err(RoomError::Impersonation {
                claimed: "alice".into(),
                signer: "bob".into()
            })
        );
        forged.sig = signature_text(&identity("nobody").sign(b"x"));
        assert_eq!(
            room.apply(forged),
            Err(RoomError::BadSignature {
                name: "alice".into()
            })
        );
        assert!(!room.is_member("eve"));
    }

    #[test]
    fn an_altered_change_does_not_verify() {
        let mut room = room();
        let mut change = invite(&mut room.clone(), "alice", "bob").unwrap();
        change.action = Action::Invite {
            member: "mallory".into(),
            key: identity("mallory").public(),
        };
        assert!(matches!(
            room.apply(change),
            Err(RoomError::BadSignature { .. })
        ));
    }

    #[test]
    fn changes_apply_in_order_once_and_conflicts_are_refused() {
        let mut room = room();
        let mut ahead = room.clone();
        let first = invite(&mut ahead, "alice", "bob").unwrap();
        let second = invite(&mut ahead, "alice", "carol").unwrap();
        assert_eq!(
            room.apply(second.clone()),
            Err(RoomError::ChangeGap { have: 0, got: 2 })
        );
        assert_eq!(room.apply(first.clone()), Ok(true));
        assert_eq!(room.apply(first), Ok(false));
        assert_eq!(room.apply(second), Ok(true));
        let mut other = Membership::from_changes(room.changes()[..2].to_vec()).unwrap();
        invite(&mut other, "alice", "dave").unwrap();
        let rival = other.changes()[2].clone();
        assert_eq!(
            room.apply(rival),
            Err(RoomError::ConflictingChange { version: 2 })
        );
    }

    #[test]
    fn a_room_holds_at_most_32_members() {
        // The figure the README and PROTOCOL.md give, not the constant: they must agree.
        let mut room = room();
        for n in 1..32 {
            invite(&mut room, "alice", &format!("member{n}")).unwrap();
        }
        assert_eq!(room.members().count(), 32);
        assert_eq!(
            invite(&mut room, "alice", "one-too-many"),
            Err(RoomError::RoomFull { limit: 32 })
        );
        let removal = Action::Remove {
            member: "member1".into(),
            last_seq: 0,
        };
        room.make("alice", &identity("alice"), removal).unwrap();
        invite(&mut room, "alice", "one-too-many").unwrap();
    }

    #[test]
    fn a_removed_member_writes_nothing_more_even_under_an_older_version() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        assert!(room.writer_key("bob", 1, 5).is_ok());
        let removal = Action::Remove {
            member: "bob".into(),
            last_seq: 5,
        };
        room.make("alice", &identity("alice"), removal).unwrap();
        assert!(
            room.writer_key("bob", 1, 5).is_ok(),
            "written before removal"
        );
        for (version, seq) in [(1, 6), (2, 5), (2, 1)] {
            assert_eq!(
                room.writer_key("bob", version, seq),
                Err(RoomError::AfterRemoval {
                    name: "bob".into(),
                    seq
                })
            );
        }
        assert!(!room.is_member("bob"));
    }

    #[test]
    fn a_creator_invited_back_after_leaving_manages_no_more() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        room.make(
            "alice",
            &identity("alice"),
            Action::Promote {
                member: "bob".into(),
            },
        )
        .unwrap();
        room.make("alice", &identity("alice"), Action::Leave { last_seq: 0 })
            .unwrap();
        invite(&mut room, "bob", "alice").unwrap();
        assert!(matches!(
            invite(&mut room, "alice", "carol"),
            Err(RoomError::NotAllowed { .. })
        ));
    }

    #[test]
    fn a_departure_numbered_past_the_bound_is_refused() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        let leave = Action::Leave { last_seq: u64::MAX };
        assert!(matches!(
            room.make("bob", &identity("bob"), leave),
            Err(RoomError::BadChange(_))
        ));
        assert!(room.is_member("bob"));
    }

    #[test]
    fn a_former_member_invited_again_writes_on_from_its_last_number() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        let removal = Action::Remove {
            member: "bob".into(),
            last_seq: 5,
        };
        room.make("alice", &identity("alice"), removal).unwrap();
        // Back at version 3, with a new device's key.
        let key = identity("bob's new phone").public();
        let again = Action::Invite {
            member: "bob".into(),
            key,
        };
        room.make("alice", &identity("alice"), again).unwrap();
        assert!(room.is_member("bob") && !room.is_admin("bob"));
        assert_eq!(room.writer_key("bob", 3, 6), Ok(key), "its next number");
        assert_eq!(
            room.writer_key("bob", 1, 5),
            Ok(identity("bob").public()),
            "what it wrote in its first stay, under the key it had then"
        );
        for (version, seq, why) in [
            (2, 6, "while out"),
            (1, 6, "an older version"),
            (3, 5, "a number of its first stay, under the second"),
        ] {
            assert_eq!(
                room.writer_key("bob", version, seq),
                Err(RoomError::AfterRemoval {
                    name: "bob".into(),
                    seq
                }),
                "{why}"
            );
        }
        assert_eq!(
            invite(&mut room, "alice", "bob"),
            Err(RoomError::AlreadyMember { name: "bob".into() })
        );
    }

    #[test]
    fn writers_must_be_members_at_the_version_they_wrote_under() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        assert!(matches!(
            room.writer_key("bob", 0, 1),
            Err(RoomError::NotAMember { .. })
        ));
        assert!(matches!(
            room.writer_key("eve", 1, 1),
            Err(RoomError::NotAMember { .. })
        ));
        assert_eq!(
            room.writer_key("bob", 3, 1),
            Err(RoomError::MembershipBehind { have: 1, needs: 3 })
        );
    }

    #[test]
    fn any_member_may_leave_and_the_creator_cannot_be_removed() {
        let mut room = room();
        invite(&mut room, "alice", "bob").unwrap();
        room.make("bob", &identity("bob"), Action::Leave { last_seq: 2 })
            .unwrap();
        assert_eq!(room.departure("bob"), Some((2, 2)));
        let removal = Action::Remove {
            member: "alice".into(),
            last_seq: 0,
        };
        assert!(matches!(
            room.make("alice", &identity("alice"), removal),
            Err(RoomError::NotAllowed { .. })
        ));
    }

    #[test]
    fn a_chain_must_start_with_its_creation() {
        let mut room = room();
        let invitation = invite(&mut room, "alice", "bob").unwrap();
        assert!(matches!(
            Membership::from_changes(vec![invitation]),
            Err(RoomError::BadChange(_))
        ));
        assert!(Membership::from_changes(vec![]).is_err());
    }
}

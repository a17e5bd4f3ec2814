//! The stdin command language: `/connect PEER`, `/close PEER`, `/send PEER TEXT...`,
//! `/sendfile PEER PATH`, `/verify PEER`, `/watch PEER`, `/unwatch PEER`, `/room ...`, `/quit`.

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Connect(String),
    /// Ends the chat with a peer.
    Close(String),
    /// A group room command (`/room create|invite|send|picture|leave|remove|admin`).
    Room(RoomCommand),
    Send {
        peer: String,
        text: String,
    },
    /// Marks a peer's identity key verified (after comparing safety numbers).
    Verify(String),
    /// Watches a contact's presence (`presence` events), chat or not.
    Watch(String),
    Unwatch(String),
    /// Sends the file at `path` (to peerchat peers).
    SendFile {
        peer: String,
        path: String,
    },
    Quit,
}

/// What `/room` does. Rooms are named by the id `room_members` reports.
#[derive(Debug, PartialEq, Eq)]
pub enum RoomCommand {
    Create(String),
    Invite {
        room: String,
        peer: String,
    },
    Remove {
        room: String,
        peer: String,
    },
    Admin {
        room: String,
        peer: String,
    },
    Send {
        room: String,
        text: String,
    },
    /// Sends the file at `path` as a picture into the room.
    Picture {
        room: String,
        path: String,
    },
    Leave(String),
}

const ROOM_USAGE: &str = "usage: /room create NAME, /room invite ROOM PEER, \
    /room send ROOM TEXT..., /room picture ROOM PATH, /room leave ROOM, /room remove ROOM PEER, /room admin ROOM PEER";

impl RoomCommand {
    fn parse(rest: &str) -> Result<Self, String> {
        let (verb, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let rest = rest.trim_start();
        let one_word = !rest.is_empty() && !rest.contains(' ');
        match (verb, rest.split_once(' ')) {
            ("create", _) if !rest.trim().is_empty() => Ok(Self::Create(rest.trim().to_owned())),
            ("invite" | "remove" | "admin", Some((room, peer))) if !peer.trim().contains(' ') => {
                let (room, peer) = (room.to_owned(), peer.trim().to_owned());
                Ok(match verb {
                    "invite" => Self::Invite { room, peer },
                    "remove" => Self::Remove { room, peer },
                    _ => Self::Admin { room, peer },
                })
            }
            ("send", Some((room, text))) if !room.is_empty() => Ok(Self::Send {
                room: room.to_owned(),
                text: text.to_owned(),
            }),
            ("picture", Some((room, path))) if !room.is_empty() && !path.trim().is_empty() => {
                Ok(Self::Picture {
                    room: room.to_owned(),
                    path: path.trim().to_owned(),
                })
            }
            ("leave", _) if one_word => Ok(Self::Leave(rest.to_owned())),
            _ => Err(ROOM_USAGE.to_owned()),
        }
    }
}

impl Command {
    /// Parses one line; `Ok(None)` for a blank line, `Err` with a message for anything else.
    pub fn parse(line: &str) -> Result<Option<Self>, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Ok(None);
        }
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim_start();
        match verb {
            "/connect" if !rest.is_empty() && !rest.contains(' ') => {
                Ok(Some(Self::Connect(rest.to_owned())))
            }
            "/connect" => Err("usage: /connect PEER".to_owned()),
            "/close" if !rest.is_empty() && !rest.contains(' ') => {
                Ok(Some(Self::Close(rest.to_owned())))
            }
            "/close" => Err("usage: /close PEER".to_owned()),
            "/room" => RoomCommand::parse(rest).map(|room| Some(Self::Room(room))),
            "/send" => match rest.split_once(' ') {
                Some((peer, text)) if !peer.is_empty() => Ok(Some(Self::Send {
                    peer: peer.to_owned(),
                    text: text.to_owned(),
                })),
                _ => Err("usage: /send PEER TEXT...".to_owned()),
            },
            "/verify" if !rest.is_empty() && !rest.contains(' ') => {
                Ok(Some(Self::Verify(rest.to_owned())))
            }
            "/verify" => Err("usage: /verify PEER".to_owned()),
            "/watch" | "/unwatch" if !rest.is_empty() && !rest.contains(' ') => {
                let peer = rest.to_owned();
                Ok(Some(if verb == "/watch" {
                    Self::Watch(peer)
                } else {
                    Self::Unwatch(peer)
                }))
            }
            "/watch" | "/unwatch" => Err(format!("usage: {verb} PEER")),
            "/sendfile" => match rest.split_once(' ') {
                Some((peer, path)) if !peer.is_empty() && !path.trim().is_empty() => {
                    Ok(Some(Self::SendFile {
                        peer: peer.to_owned(),
                        path: path.trim().to_owned(),
                    }))
                }
                _ => Err("usage: /sendfile PEER PATH".to_owned()),
            },
            "/quit" => Ok(Some(Self::Quit)),
            _ => Err(format!(
                "unknown command `{verb}`; use /connect PEER, /close PEER, /send PEER TEXT..., \
                 /sendfile PEER PATH, /verify PEER, /watch PEER, /unwatch PEER, \
                 /room create|invite|send|picture|leave|remove|admin ... or /quit"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watching_a_contact_parses() {
        assert_eq!(
            Command::parse("/watch bob"),
            Ok(Some(Command::Watch("bob".into())))
        );
        assert_eq!(
            Command::parse("/unwatch bob"),
            Ok(Some(Command::Unwatch("bob".into())))
        );
        assert!(Command::parse("/watch").unwrap_err().contains("usage"));
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            Command::parse("/connect bob"),
            Ok(Some(Command::Connect("bob".into())))
        );
        assert_eq!(
            Command::parse("/send bob hello  there "),
            Ok(Some(Command::Send {
                peer: "bob".into(),
                text: "hello  there ".into()
            }))
        );
        assert_eq!(
            Command::parse("/sendfile bob /tmp/a picture.png"),
            Ok(Some(Command::SendFile {
                peer: "bob".into(),
                path: "/tmp/a picture.png".into()
            }))
        );
        assert!(
            Command::parse("/sendfile bob")
                .unwrap_err()
                .contains("usage")
        );
        assert_eq!(Command::parse("/quit"), Ok(Some(Command::Quit)));
        assert_eq!(
            Command::parse("/close bob"),
            Ok(Some(Command::Close("bob".into())))
        );
        assert_eq!(Command::parse("   "), Ok(None));
    }

    #[test]
    fn bad_commands_explain_themselves() {
        assert!(Command::parse("/connect").unwrap_err().contains("usage"));
        assert!(Command::parse("/send bob").unwrap_err().contains("usage"));
        assert!(
            Command::parse("hello")
                .unwrap_err()
                .contains("unknown command")
        );
    }

    #[test]
    fn room_commands_parse_and_explain_their_usage() {
        let room = |command| Ok(Some(Command::Room(command)));
        assert_eq!(
            Command::parse("/room create book club"),
            room(RoomCommand::Create("book club".into()))
        );
        assert_eq!(
            Command::parse("/room invite 0a1b bob"),
            room(RoomCommand::Invite {
                room: "0a1b".into(),
                peer: "bob".into()
            })
        );
        assert_eq!(
            Command::parse("/room send 0a1b hello  all"),
            room(RoomCommand::Send {
                room: "0a1b".into(),
                text: "hello  all".into()
            })
        );
        assert_eq!(
            Command::parse("/room picture 0a1b /tmp/a cat.png"),
            room(RoomCommand::Picture {
                room: "0a1b".into(),
                path: "/tmp/a cat.png".into()
            })
        );
        assert_eq!(
            Command::parse("/room leave 0a1b"),
            room(RoomCommand::Leave("0a1b".into()))
        );
        assert_eq!(
            Command::parse("/room remove 0a1b carol"),
            room(RoomCommand::Remove {
                room: "0a1b".into(),
                peer: "carol".into()
            })
        );
        assert_eq!(
            Command::parse("/room admin 0a1b bob"),
            room(RoomCommand::Admin {
                room: "0a1b".into(),
                peer: "bob".into()
            })
        );
        for bad in [
            "/room",
            "/room create",
            "/room invite 0a1b",
            "/room picture 0a1b",
            "/room leave",
            "/room dance",
        ] {
            assert!(Command::parse(bad).unwrap_err().contains("usage"), "{bad}");
        }
    }
}

//! The stdin command language: `/connect PEER`, `/send PEER TEXT...`, `/sendfile PEER PATH`,
//! `/verify PEER`, `/watch PEER`, `/unwatch PEER`, `/quit`.

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Connect(String),
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
                "unknown command `{verb}`; use /connect PEER, /send PEER TEXT..., \
                 /sendfile PEER PATH, /verify PEER, /watch PEER, /unwatch PEER or /quit"
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
}

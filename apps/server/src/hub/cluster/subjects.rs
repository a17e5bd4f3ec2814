//! Where things live in NATS: the subjects of deliveries, presence and gateway chatter, and
//! the names bucket with one key per name, all under a namespace (`peerchat` unless told
//! otherwise), so several communities can share one NATS cluster.
//!
//! Usernames may hold spaces, dots, wildcards or any Unicode, none of which a subject token
//! or key allows, so a name appears only as its UTF-8 bytes in unpadded base64url, behind an
//! `n` (so an empty name is a token too).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The namespace a gateway works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    /// A namespace: letters, digits, `-` and `_` only (it is part of a bucket name).
    pub fn new(name: &str) -> Option<Self> {
        let valid = !name.is_empty()
            && (name.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| Self(name.to_owned()))
    }

    /// The JetStream key-value bucket of names: per name, its identity key and holder.
    pub fn names_bucket(&self) -> String {
        format!("{}_names", self.0)
    }

    /// Every gateway's heartbeat (the payload is the gateway's id).
    pub fn heartbeats(&self) -> String {
        format!("{}.gateways.heartbeat", self.0)
    }

    /// Messages for `name`: its holder's gateway subscribes while it holds the name, and
    /// answers each request, so a request nobody answers at once found nobody.
    pub fn inbox(&self, name: &str) -> String {
        format!("{}.inbox.{}", self.0, token(name))
    }

    /// Changes of `name`'s holder: gateways whose clients watch `name` subscribe.
    pub fn presence(&self, name: &str) -> String {
        format!("{}.presence.{}", self.0, token(name))
    }

    /// Orders to `gateway` to close one of its connections (its name was taken over).
    pub fn close_orders(&self, gateway: &str) -> String {
        format!("{}.gateways.{gateway}.close", self.0)
    }
}

/// `name` as one subject token.
pub fn token(name: &str) -> String {
    format!("n{}", URL_SAFE_NO_PAD.encode(name.as_bytes()))
}

/// `name`'s key in the names bucket.
pub fn name_key(name: &str) -> String {
    token(name)
}

/// The name whose key is `key`, if it is one.
pub fn name_of_key(key: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(key.strip_prefix('n')?).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_username_makes_one_valid_token() {
        let ns = Namespace::new("peerchat").unwrap();
        for name in ["alice", "", "a.b", "*", ">", "two words", "zoë 🙂", "a/b"] {
            let token = token(name);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{name:?} → {token}"
            );
            assert_eq!(ns.inbox(name).split('.').count(), 3);
        }
        assert_ne!(token("a"), token("b"));
        for name in ["zoë 🙂", "", "a.b"] {
            assert_eq!(name_of_key(&name_key(name)).as_deref(), Some(name));
        }
        assert_eq!(name_of_key("x"), None);
        assert_eq!(token("alice"), "nYWxpY2U");
    }

    #[test]
    fn a_namespace_is_one_plain_word() {
        assert_eq!(
            Namespace::new("team-2").unwrap().names_bucket(),
            "team-2_names"
        );
        for bad in ["", "a.b", "a b", "*", "a>"] {
            assert!(Namespace::new(bad).is_none(), "{bad:?}");
        }
    }
}

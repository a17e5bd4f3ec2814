//! MQTT topic names used for signaling and presence.

/// Where clients publish `register` (answered by peerchat-server and the original server).
pub const REGISTER_TOPIC: &str = "system/register";

/// The `from` the server writes on its own messages.
pub const SERVER_NAME: &str = "server";

/// Subscription filter that delivers every user's retained presence.
pub const PRESENCE_FILTER: &str = "peerchat/presence/+";

const INCOMING_SUFFIX: &str = "/incoming";
const PRESENCE_PREFIX: &str = "peerchat/presence/";

/// The topic a user receives signaling on.
pub fn incoming_topic(user: &str) -> String {
    format!("{user}{INCOMING_SUFFIX}")
}

/// The retained topic that says whether a user is online.
pub fn presence_topic(user: &str) -> String {
    format!("{PRESENCE_PREFIX}{user}")
}

/// The user an `<user>/incoming` topic belongs to.
pub fn user_of_incoming_topic(topic: &str) -> Option<&str> {
    topic
        .strip_suffix(INCOMING_SUFFIX)
        .filter(|user| !user.is_empty() && !user.contains('/'))
}

/// The user a presence topic belongs to.
pub fn user_of_presence_topic(topic: &str) -> Option<&str> {
    topic
        .strip_prefix(PRESENCE_PREFIX)
        .filter(|user| !user.is_empty() && !user.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_to_their_user() {
        assert_eq!(user_of_incoming_topic(&incoming_topic("bob")), Some("bob"));
        assert_eq!(user_of_presence_topic(&presence_topic("bob")), Some("bob"));
        assert_eq!(user_of_incoming_topic("system/register"), None);
        assert_eq!(user_of_incoming_topic("a/b/incoming"), None);
        assert_eq!(user_of_presence_topic("peerchat/presence/"), None);
    }
}

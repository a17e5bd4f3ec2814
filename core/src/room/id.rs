//! A room's name on the wire: 16 random bytes as 32 lowercase hex digits, drawn by its
//! creator. Random, so two rooms never share an id and nobody can guess one to claim it.

use std::fmt;

/// Hex digits in a room id.
const ROOM_ID_CHARS: usize = 32;

/// Names one room for as long as it exists, whatever its (changeable, not unique) name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoomId(String);

impl RoomId {
    /// The id made of `random` (16 bytes from the platform's random source).
    pub fn from_random(random: [u8; 16]) -> Self {
        Self(random.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    /// An id as it travels; `None` unless it is 32 lowercase hex digits, so that every
    /// room has one spelling and an id is safe to use in signed text and file names.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = text.len() == ROOM_ID_CHARS
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_random_bytes_in_hex_and_parses_back() {
        let id = RoomId::from_random([0xab; 16]);
        assert_eq!(id.as_str(), "ab".repeat(16));
        assert_eq!(RoomId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn other_spellings_are_not_room_ids() {
        for bad in [
            "",
            "ab",
            &"AB".repeat(16),
            &"ab".repeat(17),
            &"zz".repeat(16),
        ] {
            assert_eq!(RoomId::parse(bad), None, "{bad}");
        }
    }
}

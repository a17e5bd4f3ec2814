//! Pictures in room messages. The message carries what the picture is (name, media type,
//! size, SHA-256), covered by its author's signature; the bytes travel apart, in pieces
//! small enough for one channel message each, and are taken only once they add up to
//! exactly the signed size and hash. So any member may pass a picture on, and none can
//! swap it for another.

use std::collections::VecDeque;

use sha2::{Digest, Sha256};

use crate::protocol::{MAX_FILE_NAME_BYTES, MAX_MEDIA_TYPE_BYTES};
use crate::small_map::{SmallMap, SmallSet};

use super::RoomError;

/// Largest picture a room message carries. Every member keeps every picture of its rooms
/// in its store and the latest in memory (up to 32 MiB of them), and passes them on to the
/// others, so it is far below a 1:1 file's bound: a photo scaled for a
/// phone's screen fits.
pub const MAX_ROOM_PICTURE_BYTES: u64 = 2 * 1024 * 1024;

/// Picture bytes per piece frame. Base64 makes them a third larger; with the frame's
/// fields a piece of 40 KiB is about 55 KiB of JSON, under the channel's 64 KiB.
pub const ROOM_PIECE_BYTES: usize = 40 * 1024;

/// Most pictures of one room arriving at once (each holds its whole size from its first
/// piece): a member cannot make another reserve memory for many pictures it never
/// completes. A piece of one more makes way: the arriving picture with the fewest pieces
/// is dropped (and asked for again at a later meeting), so pictures that stopped arriving
/// never block new ones.
pub const MAX_ARRIVING_PICTURES: usize = 8;

/// Most bytes of whole pictures one room keeps in memory, to pass them on. Past it the
/// oldest are let go (the app has shown them, the store keeps them, other members still
/// pass them on): a room's history of pictures does not grow a phone's memory without end.
pub const MAX_WHOLE_PICTURE_BYTES: u64 = 32 * 1024 * 1024;

/// What a room message's picture is: all of it is signed with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex: names the picture in piece frames.
    pub sha256: String,
}

impl Picture {
    /// Describes `bytes` as picture `name` of type `mime`, refusing what no member takes.
    pub fn of(name: &str, mime: &str, bytes: &[u8]) -> Result<Self, RoomError> {
        let picture = Self {
            name: name.to_owned(),
            mime: mime.to_owned(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        };
        picture.check()?;
        Ok(picture)
    }

    /// Checks the bounds every member applies. Name and type go into the signed bytes one
    /// per line, so they may hold no control characters (no newline among them).
    pub fn check(&self) -> Result<(), RoomError> {
        if self.size > MAX_ROOM_PICTURE_BYTES {
            return Err(RoomError::PictureTooLarge {
                size: self.size,
                limit: MAX_ROOM_PICTURE_BYTES,
            });
        }
        let printable = |text: &str| !text.chars().any(char::is_control);
        let reason = if self.size == 0 {
            Some("it is empty")
        } else if self.name.is_empty() || self.name.len() > MAX_FILE_NAME_BYTES {
            Some("its name is empty or longer than 255 bytes")
        } else if self.mime.is_empty() || self.mime.len() > MAX_MEDIA_TYPE_BYTES {
            Some("its media type is empty or longer than 127 bytes")
        } else if !printable(&self.name) || !printable(&self.mime) {
            Some("its name or media type contains control characters")
        } else if self.sha256.len() != 64
            || !(self.sha256.bytes()).all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Some("its SHA-256 is not 64 lowercase hex digits")
        } else {
            None
        };
        reason.map_or(Ok(()), |reason| Err(RoomError::BadPicture(reason)))
    }

    /// How many pieces its bytes travel in.
    fn pieces(&self) -> usize {
        (self.size as usize).div_ceil(ROOM_PIECE_BYTES)
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What [`Pictures::take_piece`] did with a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceTaken {
    /// Kept; more pieces are to come.
    Partial,
    /// The last piece: the bytes are whole and match the signed hash.
    Complete,
    /// Nothing new: the piece was held already, or its picture is whole.
    Duplicate,
}

/// A picture's bytes, whole or arriving.
#[derive(Debug, Clone)]
struct Bytes {
    data: Vec<u8>,
    /// Per piece, whether it arrived; empty once the picture is whole.
    arrived: Vec<bool>,
    missing: usize,
}

/// Bytes are held by SHA-256 and the size a message signed for it: a member may sign a
/// message claiming another's hash with another size, and pieces for that claim must not
/// land in the real picture's bytes (nor its bytes be sized by the false claim).
type Key = (String, u64);

fn key(picture: &Picture) -> Key {
    (picture.sha256.clone(), picture.size)
}

/// The picture bytes one member holds of a room, by SHA-256 and size.
#[derive(Debug, Clone, Default)]
pub struct Pictures {
    held: SmallMap<Key, Bytes>,
    /// Whole pictures in the order they became whole, and their bytes in all.
    whole: VecDeque<Key>,
    whole_bytes: u64,
    /// Pictures that were whole here and were let go for newer ones: not asked for again,
    /// and their pieces not taken again.
    let_go: SmallSet<String>,
}

impl Pictures {
    /// The whole bytes of the picture with this hash, if held (only bytes that hash to it
    /// are ever whole, whatever sizes messages claimed for it).
    pub fn bytes(&self, sha256: &str) -> Option<&[u8]> {
        let claims = (sha256.to_owned(), 0)..=(sha256.to_owned(), u64::MAX);
        (self.held.range(claims))
            .find(|(_, bytes)| bytes.missing == 0)
            .map(|(_, bytes)| &bytes.data[..])
    }

    /// Bytes of whole pictures held.
    pub fn whole_bytes(&self) -> u64 {
        self.whole_bytes
    }

    /// Bytes reserved by pictures still arriving.
    pub fn arriving_bytes(&self) -> u64 {
        (self.held.values())
            .filter(|bytes| bytes.missing > 0)
            .map(|bytes| bytes.data.len() as u64)
            .sum()
    }

    /// Whether some of the picture with this hash has arrived, and not all.
    pub fn is_arriving(&self, sha256: &str) -> bool {
        let claims = (sha256.to_owned(), 0)..=(sha256.to_owned(), u64::MAX);
        self.held.range(claims).any(|(_, bytes)| bytes.missing > 0)
    }

    /// Lets the whole picture with this hash go, as the bound does for the oldest: for a
    /// bound over all rooms. Returns the bytes freed.
    pub fn let_go(&mut self, sha256: &str) -> u64 {
        let Some(at) = self.whole.iter().position(|(held, _)| held == sha256) else {
            return 0;
        };
        let key = self.whole.remove(at).expect("found");
        let freed = self
            .held
            .remove(&key)
            .map_or(0, |bytes| bytes.data.len() as u64);
        self.whole_bytes -= freed;
        self.let_go.insert(key.0);
        freed
    }

    /// Whether the picture was whole here: held now, or let go for newer ones.
    pub fn had(&self, sha256: &str) -> bool {
        self.bytes(sha256).is_some() || self.let_go.contains(sha256)
    }

    /// Keeps the whole bytes of `picture` (written here, or kept from an earlier run).
    pub fn keep(&mut self, picture: &Picture, data: &[u8]) -> Result<(), RoomError> {
        if data.len() as u64 != picture.size || sha256_hex(data) != picture.sha256 {
            return Err(RoomError::PictureMismatch {
                sha256: picture.sha256.clone(),
            });
        }
        if self.bytes(&picture.sha256).is_some() {
            return Ok(());
        }
        self.held.insert(
            key(picture),
            Bytes {
                data: data.to_vec(),
                arrived: Vec::new(),
                missing: 0,
            },
        );
        self.became_whole(picture);
        Ok(())
    }

    /// Counts a picture that just became whole, and lets the oldest go past the bound
    /// (never the newest).
    fn became_whole(&mut self, picture: &Picture) {
        self.let_go.remove(&picture.sha256);
        self.whole.push_back(key(picture));
        self.whole_bytes += picture.size;
        while self.whole_bytes > MAX_WHOLE_PICTURE_BYTES && self.whole.len() > 1 {
            let Some(oldest) = self.whole.pop_front() else {
                break;
            };
            if let Some(bytes) = self.held.remove(&oldest) {
                self.whole_bytes -= bytes.data.len() as u64;
            }
            self.let_go.insert(oldest.0);
        }
    }

    /// Takes the piece at `offset` of `picture` (one a held message carries). Pieces start
    /// at multiples of [`ROOM_PIECE_BYTES`] and are that long but for the last; whole
    /// bytes that do not hash to the signed SHA-256 are refused and dropped, so the
    /// picture can arrive again from another member.
    pub fn take_piece(
        &mut self,
        picture: &Picture,
        offset: u64,
        data: &[u8],
    ) -> Result<PieceTaken, RoomError> {
        let index = (offset / ROOM_PIECE_BYTES as u64) as usize;
        let expected = picture
            .size
            .saturating_sub(offset)
            .min(ROOM_PIECE_BYTES as u64);
        if !offset.is_multiple_of(ROOM_PIECE_BYTES as u64)
            || offset >= picture.size
            || data.len() as u64 != expected
        {
            return Err(RoomError::BadPiece {
                sha256: picture.sha256.clone(),
                offset,
            });
        }
        if self.let_go.contains(&picture.sha256) || self.bytes(&picture.sha256).is_some() {
            return Ok(PieceTaken::Duplicate);
        }
        if !self.held.contains_key(&key(picture)) {
            self.make_way();
        }
        let bytes = self.held.entry(key(picture)).or_insert_with(|| Bytes {
            data: vec![0; picture.size as usize],
            arrived: vec![false; picture.pieces()],
            missing: picture.pieces(),
        });
        if bytes.missing == 0 || bytes.arrived[index] {
            return Ok(PieceTaken::Duplicate);
        }
        let start = offset as usize;
        bytes.data[start..start + data.len()].copy_from_slice(data);
        bytes.arrived[index] = true;
        bytes.missing -= 1;
        if bytes.missing > 0 {
            return Ok(PieceTaken::Partial);
        }
        if sha256_hex(&bytes.data) != picture.sha256 {
            self.held.remove(&key(picture));
            return Err(RoomError::PictureMismatch {
                sha256: picture.sha256.clone(),
            });
        }
        bytes.arrived = Vec::new();
        self.became_whole(picture);
        Ok(PieceTaken::Complete)
    }

    /// Drops the arriving picture with the fewest pieces if [`MAX_ARRIVING_PICTURES`] are
    /// arriving.
    fn make_way(&mut self) {
        let arriving = self.held.iter().filter(|(_, bytes)| bytes.missing > 0);
        if arriving.clone().count() < MAX_ARRIVING_PICTURES {
            return;
        }
        let least = arriving
            .min_by_key(|(_, bytes)| bytes.arrived.len() - bytes.missing)
            .map(|(key, _)| key.clone());
        if let Some(key) = least {
            self.held.remove(&key);
        }
    }

    /// The pieces of a whole picture, as they travel: offset and bytes.
    pub fn pieces(&self, sha256: &str) -> Vec<(u64, &[u8])> {
        let Some(data) = self.bytes(sha256) else {
            return Vec::new();
        };
        let pieces = data.chunks(ROOM_PIECE_BYTES);
        let offsets = (0..).step_by(ROOM_PIECE_BYTES);
        offsets.zip(pieces).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(size: usize) -> Vec<u8> {
        (0..size).map(|n| (n * 7 % 251) as u8).collect()
    }

    #[test]
    fn pieces_in_any_order_and_twice_make_the_picture_once() {
        let data = photo(3 * ROOM_PIECE_BYTES + 17);
        let picture = Picture::of("cat.png", "image/png", &data).unwrap();
        let mut sender = Pictures::default();
        sender.keep(&picture, &data).unwrap();
        let mut pieces = sender.pieces(&picture.sha256);
        assert_eq!(pieces.len(), 4);
        pieces.reverse();
        let mut receiver = Pictures::default();
        let mut taken = Vec::new();
        for (offset, piece) in pieces.iter().chain(&pieces) {
            taken.push(receiver.take_piece(&picture, *offset, piece).unwrap());
        }
        let complete = taken.iter().filter(|t| **t == PieceTaken::Complete);
        assert_eq!(complete.count(), 1);
        assert_eq!(taken[..3], [PieceTaken::Partial; 3]);
        assert_eq!(taken[4..], [PieceTaken::Duplicate; 4]);
        assert_eq!(receiver.bytes(&picture.sha256), Some(&data[..]));
    }

    #[test]
    fn past_the_bound_the_oldest_whole_pictures_are_let_go_and_not_taken_again() {
        let size = MAX_ROOM_PICTURE_BYTES as usize;
        let count = (MAX_WHOLE_PICTURE_BYTES / MAX_ROOM_PICTURE_BYTES) as usize + 2;
        let photos: Vec<(Picture, Vec<u8>)> = (0..count)
            .map(|n| {
                let mut data = photo(size);
                data[0] = n as u8;
                (Picture::of("p.png", "image/png", &data).unwrap(), data)
            })
            .collect();
        let mut sender = Pictures::default();
        let mut receiver = Pictures::default();
        for (picture, data) in &photos {
            sender.keep(picture, data).unwrap();
            for (offset, piece) in sender.pieces(&picture.sha256) {
                receiver.take_piece(picture, offset, piece).unwrap();
            }
        }
        for side in [&sender, &receiver] {
            assert!(side.whole_bytes <= MAX_WHOLE_PICTURE_BYTES);
            let (old, new) = photos.split_at(2);
            assert!(old.iter().all(|(p, _)| side.bytes(&p.sha256).is_none()));
            assert!(old.iter().all(|(p, _)| side.had(&p.sha256)));
            assert!(new.iter().all(|(p, _)| side.bytes(&p.sha256).is_some()));
        }
        // Pieces of one let go, passed on again by another member, are not taken again.
        let (first, data) = &photos[0];
        let piece = &data[..ROOM_PIECE_BYTES];
        assert_eq!(
            receiver.take_piece(first, 0, piece),
            Ok(PieceTaken::Duplicate)
        );
    }

    #[test]
    fn a_picture_let_go_frees_its_bytes_and_is_not_taken_again() {
        let data = photo(ROOM_PIECE_BYTES + 5);
        let picture = Picture::of("cat.png", "image/png", &data).unwrap();
        let mut pictures = Pictures::default();
        pictures
            .take_piece(&picture, 0, &data[..ROOM_PIECE_BYTES])
            .unwrap();
        assert!(pictures.is_arriving(&picture.sha256));
        assert_eq!(pictures.arriving_bytes(), data.len() as u64);
        let last = &data[ROOM_PIECE_BYTES..];
        let offset = ROOM_PIECE_BYTES as u64;
        assert_eq!(
            pictures.take_piece(&picture, offset, last),
            Ok(PieceTaken::Complete)
        );
        assert_eq!(
            (pictures.arriving_bytes(), pictures.whole_bytes()),
            (0, data.len() as u64)
        );
        assert_eq!(pictures.let_go(&picture.sha256), data.len() as u64);
        assert_eq!(pictures.whole_bytes(), 0);
        assert!(pictures.had(&picture.sha256) && pictures.bytes(&picture.sha256).is_none());
        assert_eq!(
            pictures.take_piece(&picture, 0, &data[..ROOM_PIECE_BYTES]),
            Ok(PieceTaken::Duplicate)
        );
    }

    #[test]
    fn altered_bytes_are_refused_and_can_arrive_again() {
        let data = photo(ROOM_PIECE_BYTES + 5);
        let picture = Picture::of("cat.png", "image/png", &data).unwrap();
        let mut receiver = Pictures::default();
        let (first, rest) = data.split_at(ROOM_PIECE_BYTES);
        let mut altered = rest.to_vec();
        altered[0] ^= 1;
        assert_eq!(
            receiver.take_piece(&picture, 0, first),
            Ok(PieceTaken::Partial)
        );
        assert_eq!(
            receiver.take_piece(&picture, ROOM_PIECE_BYTES as u64, &altered),
            Err(RoomError::PictureMismatch {
                sha256: picture.sha256.clone()
            })
        );
        assert_eq!(receiver.bytes(&picture.sha256), None);
        receiver.take_piece(&picture, 0, first).unwrap();
        let last = receiver.take_piece(&picture, ROOM_PIECE_BYTES as u64, rest);
        assert_eq!(last, Ok(PieceTaken::Complete));
        assert!(receiver.keep(&picture, &altered).is_err());
    }

    #[test]
    fn pieces_beyond_the_size_or_out_of_step_are_refused() {
        let data = photo(ROOM_PIECE_BYTES + 5);
        let picture = Picture::of("cat.png", "image/png", &data).unwrap();
        let mut receiver = Pictures::default();
        for (offset, len) in [
            (2 * ROOM_PIECE_BYTES as u64, 5),
            (ROOM_PIECE_BYTES as u64, 6),
            (1, ROOM_PIECE_BYTES),
            (0, 5),
        ] {
            assert!(
                matches!(
                    receiver.take_piece(&picture, offset, &vec![0; len]),
                    Err(RoomError::BadPiece { .. })
                ),
                "{offset} {len}"
            );
        }
        assert_eq!(receiver.bytes(&picture.sha256), None);
    }

    #[test]
    fn oversized_or_unprintable_pictures_are_refused() {
        // The README's figure, 2 MiB, not the constant: they must agree.
        let largest = vec![0; 2 * 1024 * 1024];
        assert!(Picture::of("largest.png", "image/png", &largest).is_ok());
        let big = vec![0; 2 * 1024 * 1024 + 1];
        assert_eq!(
            Picture::of("big.png", "image/png", &big),
            Err(RoomError::PictureTooLarge {
                size: big.len() as u64,
                limit: 2 * 1024 * 1024
            })
        );
        for (name, mime) in [
            ("a\nb.png", "image/png"),
            ("", "image/png"),
            ("a.png", ""),
            (&*"x".repeat(256), "image/png"),
        ] {
            assert!(
                matches!(Picture::of(name, mime, b"x"), Err(RoomError::BadPicture(_))),
                "{name:?} {mime:?}"
            );
        }
        let mut upper = Picture::of("a.png", "image/png", b"x").unwrap();
        upper.sha256 = upper.sha256.to_uppercase();
        assert!(upper.check().is_err());
    }

    #[test]
    fn pictures_that_stopped_arriving_make_way_for_new_ones() {
        let pictures: Vec<(Picture, Vec<u8>)> = (0..=MAX_ARRIVING_PICTURES as u8)
            .map(|n| {
                let data = vec![n; 2 * ROOM_PIECE_BYTES + 1];
                (Picture::of("p.png", "image/png", &data).unwrap(), data)
            })
            .collect();
        let piece = |data: &[u8], n: usize| {
            let start = n * ROOM_PIECE_BYTES;
            (
                start as u64,
                data[start..(start + ROOM_PIECE_BYTES).min(data.len())].to_vec(),
            )
        };
        let mut receiver = Pictures::default();
        // Eight pictures arriving, two pieces each but the fourth's one.
        for (n, (picture, data)) in pictures[..MAX_ARRIVING_PICTURES].iter().enumerate() {
            for k in 0..if n == 3 { 1 } else { 2 } {
                let (offset, bytes) = piece(data, k);
                assert_eq!(
                    receiver.take_piece(picture, offset, &bytes),
                    Ok(PieceTaken::Partial)
                );
            }
        }
        // A ninth drops the fourth, the one with fewest pieces, and arrives whole.
        let (ninth, data) = &pictures[MAX_ARRIVING_PICTURES];
        for k in 0..3 {
            let (offset, bytes) = piece(data, k);
            receiver.take_piece(ninth, offset, &bytes).unwrap();
        }
        assert_eq!(receiver.bytes(&ninth.sha256), Some(&data[..]));
        let (fourth, data) = &pictures[3];
        assert!(!receiver.held.contains_key(&key(fourth)), "it made way");
        // It may arrive again later, from its start.
        let (offset, bytes) = piece(data, 1);
        assert_eq!(
            receiver.take_piece(fourth, offset, &bytes),
            Ok(PieceTaken::Partial)
        );
    }

    #[test]
    fn the_hash_is_sha256_in_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

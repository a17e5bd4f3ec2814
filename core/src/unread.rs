//! What the application has not read yet of its event stream, bounded: an app that stops
//! reading must not make the client hold events (and the files in them) without end.
//!
//! Past the bound the client leaves (closing its chats, as `disconnect` does) and says why
//! in its last event, [`ClientError::EventsNotRead`]. Nothing is lost silently: every
//! event made before stays in the stream for the app, and a peer keeps what this client
//! has not acknowledged for its next chat with it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::event::{ClientError, ClientEvent};

/// Most events waiting for the app before the client leaves.
pub const MAX_UNREAD_EVENTS: usize = 16_384;

/// Most bytes of received files waiting for the app before the client leaves: two largest
/// files.
pub const MAX_UNREAD_FILE_BYTES: u64 = 2 * crate::protocol::MAX_FILE_BYTES;

/// Counts of what was handed to the stream and not yet taken by the app.
#[derive(Debug)]
pub(crate) struct Unread {
    events: AtomicUsize,
    file_bytes: AtomicU64,
    limits: (usize, u64),
}

impl Default for Unread {
    fn default() -> Self {
        Self {
            events: AtomicUsize::new(0),
            file_bytes: AtomicU64::new(0),
            limits: (MAX_UNREAD_EVENTS, MAX_UNREAD_FILE_BYTES),
        }
    }
}

impl Unread {
    /// Counts `event` in. Returns the error to leave with when the app is now too far
    /// behind (the event itself still goes into the stream).
    pub fn handed(&self, event: &ClientEvent) -> Option<ClientError> {
        let events = self.events.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = file_bytes(event);
        let file_bytes = self.file_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let (max_events, max_file_bytes) = self.limits;
        (events > max_events || file_bytes > max_file_bytes)
            .then_some(ClientError::EventsNotRead { events, file_bytes })
    }

    /// The app took `event` from the stream.
    pub fn taken(&self, event: &ClientEvent) {
        self.events.fetch_sub(1, Ordering::Relaxed);
        self.file_bytes
            .fetch_sub(file_bytes(event), Ordering::Relaxed);
    }
}

fn file_bytes(event: &ClientEvent) -> u64 {
    match event {
        ClientEvent::File { data, .. } | ClientEvent::RoomPicture { data, .. } => data.len() as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: usize) -> ClientEvent {
        ClientEvent::Message {
            from: "bob".into(),
            text: format!("#{n}"),
        }
    }

    #[test]
    fn an_app_that_stops_reading_is_told_once_it_is_too_far_behind() {
        let unread = Unread::default();
        // The figure `Events`' documentation gives, not the constant: they must agree.
        for n in 0..16_384 {
            assert_eq!(unread.handed(&message(n)), None);
        }
        assert!(matches!(
            unread.handed(&message(0)),
            Some(ClientError::EventsNotRead { events, .. }) if events == 16_385
        ));
        // Reading catches up.
        unread.taken(&message(0));
        unread.taken(&message(1));
        assert_eq!(unread.handed(&message(2)), None);
    }

    #[test]
    fn unread_files_count_by_their_bytes() {
        // Small limits: the rule, without holding 512 MiB in a test.
        let unread = Unread {
            limits: (MAX_UNREAD_EVENTS, 1000),
            ..Unread::default()
        };
        let file = |len| ClientEvent::File {
            from: "bob".into(),
            id: 1,
            name: "f".into(),
            mime: "application/octet-stream".into(),
            data: vec![0; len],
        };
        let half = 500;
        assert_eq!(unread.handed(&file(half)), None);
        assert_eq!(unread.handed(&file(half)), None);
        assert!(unread.handed(&file(1)).is_some());
        unread.taken(&file(half));
        assert_eq!(unread.handed(&message(0)), None);
    }
}

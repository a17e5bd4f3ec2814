//! Images and other files in a conversation: what one shows, and how sending and receiving
//! them updates the conversation.

use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use peerchat_core::ClientError;
use peerchat_core::protocol::{MessageId, media_type_of_name};

use super::{ChatMessage, ChatState, Direction, MessageTime};

/// Picture types shown inline. Anything else is only offered for download, under a
/// neutral type, so no file from a peer is ever rendered as a page (SVG and HTML included).
const INLINE_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
];

/// A file carried by a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// The whole file as a `data:` URL: works the same in every webview, with no object
    /// URLs to free.
    pub url: DataUrl,
}

/// A `data:` URL, shared rather than copied: a picture's runs to megabytes and the screen
/// is redrawn often. Two are equal when they are the same URL.
#[derive(Debug, Clone)]
pub struct DataUrl(Rc<str>);

impl PartialEq for DataUrl {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl DataUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Attachment {
    pub fn new(name: String, mime: String, data: &[u8]) -> Self {
        let shown_as = if INLINE_TYPES.contains(&mime.as_str()) {
            mime.as_str()
        } else {
            "application/octet-stream"
        };
        let url = format!("data:{shown_as};base64,{}", STANDARD.encode(data));
        Self {
            name,
            size: data.len() as u64,
            mime,
            url: DataUrl(url.into()),
        }
    }

    /// Whether it is shown inline as a picture.
    pub fn is_image(&self) -> bool {
        INLINE_TYPES.contains(&self.mime.as_str())
    }

    /// The size in words: "12 KB".
    pub fn size_label(&self) -> String {
        match self.size {
            s if s < 1024 => format!("{s} bytes"),
            s if s < 1024 * 1024 => format!("{} KB", s.div_ceil(1024)),
            s => format!("{:.1} MB", s as f64 / (1024.0 * 1024.0)),
        }
    }
}

/// The media type of a picked file: what the platform says, else a guess from its name.
pub fn media_type(reported: Option<String>, name: &str) -> String {
    reported
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| media_type_of_name(name).to_owned())
}

impl ChatState {
    /// Records a file I sent to `peer` (shown at once), with what the client answered.
    pub fn record_file_sent(
        &mut self,
        peer: &str,
        attachment: Attachment,
        sent: Result<MessageId, ClientError>,
        at: MessageTime,
    ) {
        self.record_mine(peer, "", sent, at, |message| {
            if message.sent_id.is_some() {
                message.progress = Some((0, attachment.size));
            }
            message.attachment = Some(attachment);
        });
    }

    /// Progress of a transfer: on my message, or on the peer's file as it arrives (shown
    /// from its first byte).
    pub(super) fn on_transfer(
        &mut self,
        peer: &str,
        id: MessageId,
        incoming: bool,
        progress: (u64, u64),
        at: MessageTime,
    ) {
        // Only a transfer still under way matches: a peer's ids start again when it
        // restarts, and a finished picture must never be replaced.
        let matches = |m: &ChatMessage| {
            m.progress.is_some()
                && match incoming {
                    true => m.received_id == Some(id) && m.attachment.is_none(),
                    false => m.sent_id == Some(id),
                }
        };
        if let Some(message) = self.message_mut(peer, matches) {
            message.progress = Some(progress);
            return;
        }
        if incoming {
            self.push(peer, Direction::Theirs, "", at, None);
            if let Some(message) = self.entry(peer).messages.last_mut() {
                message.received_id = Some(id);
                message.progress = Some(progress);
            }
        }
    }

    /// A whole file from `peer`: fills its placeholder, or arrives as a new message.
    pub(super) fn on_file(
        &mut self,
        peer: &str,
        id: MessageId,
        attachment: Attachment,
        at: MessageTime,
    ) {
        let placeholder = |m: &ChatMessage| {
            m.received_id == Some(id) && m.attachment.is_none() && m.progress.is_some()
        };
        let message = match self.message_mut(peer, placeholder) {
            Some(message) => message,
            None => {
                self.push(peer, Direction::Theirs, "", at, None);
                let message = self.entry(peer).messages.last_mut().expect("just pushed");
                message.received_id = Some(id);
                message
            }
        };
        message.attachment = Some(attachment);
        message.progress = None;
    }

    /// The chat with `peer` ended: transfers under way stop where they are.
    pub(super) fn interrupt_transfers(&mut self, peer: &str) {
        let Some(entry) = self.listed_mut(peer) else {
            return;
        };
        for message in entry.messages.iter_mut().filter(|m| m.progress.is_some()) {
            message.progress = None;
            if message.attachment.is_none() {
                message.text = "The file did not arrive: the chat ended.".to_owned();
            }
        }
    }

    pub(super) fn message_mut(
        &mut self,
        peer: &str,
        wanted: impl Fn(&ChatMessage) -> bool,
    ) -> Option<&mut ChatMessage> {
        self.listed_mut(peer)?
            .messages
            .iter_mut()
            .rev()
            .find(|m| wanted(m))
    }
}

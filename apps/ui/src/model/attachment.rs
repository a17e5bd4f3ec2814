//! Images and other files in a conversation: what one shows, and how sending and receiving
//! them updates the conversation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use peerchat_core::ClientError;
use peerchat_core::protocol::MessageId;

use super::{ChatMessage, ChatState, Delivery, Direction, MessageTime};

/// A file carried by a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// A `data:` URL of the whole file once it is here: shown inline for images, offered
    /// for download otherwise. Works the same in every webview, with no object URLs to free.
    pub url: Option<String>,
}

impl Attachment {
    pub fn new(name: String, mime: String, data: &[u8]) -> Self {
        let url = format!("data:{};base64,{}", safe_type(&mime), STANDARD.encode(data));
        Self {
            name,
            size: data.len() as u64,
            mime,
            url: Some(url),
        }
    }

    /// Whether it is shown inline as a picture.
    pub fn is_image(&self) -> bool {
        self.mime.starts_with("image/") && self.url.is_some()
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
    if let Some(mime) = reported.filter(|m| !m.is_empty()) {
        return mime;
    }
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
    .to_owned()
}

/// A media type fit for a `data:` URL: `type/subtype` of token characters, else a neutral
/// one, so a peer cannot smuggle parameters or markup into the page.
fn safe_type(mime: &str) -> &str {
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match mime.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => mime,
        _ => "application/octet-stream",
    }
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
        let total = attachment.size;
        let (delivery, sent_id) = match &sent {
            Ok(id) => (Delivery::Sent, Some(*id)),
            Err(_) => (Delivery::Failed, None),
        };
        self.push(peer, Direction::Mine, "", at, Some(delivery));
        if let Some(message) = self.entry(peer).messages.last_mut() {
            message.sent_id = sent_id;
            message.progress = sent_id.map(|_| (0, total));
            message.attachment = Some(attachment);
        }
        if let Err(error) = sent {
            self.push(peer, Direction::Note, &error.to_string(), at, None);
        }
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
        let matches = |m: &ChatMessage| match incoming {
            true => m.received_id == Some(id),
            false => m.sent_id == Some(id),
        };
        if let Some(message) = self.message_mut(peer, matches) {
            let arrived = incoming && message.attachment.is_some();
            if !arrived {
                message.progress = Some(progress);
            }
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
        let message = match self.message_mut(peer, |m| m.received_id == Some(id)) {
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
        if self.selected.as_deref() != Some(peer) {
            self.entry(peer).unread += 1;
        }
    }

    fn message_mut(
        &mut self,
        peer: &str,
        wanted: impl Fn(&ChatMessage) -> bool,
    ) -> Option<&mut ChatMessage> {
        self.peers
            .iter_mut()
            .find(|p| p.name == peer)?
            .messages
            .iter_mut()
            .rev()
            .find(|m| wanted(m))
    }
}

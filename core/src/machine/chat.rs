//! The chat channel between two peers: text (plain toward original clients, numbered and
//! acknowledged between peerchat peers) and files (announced by a frame, carried in binary
//! chunks, acknowledged when complete). See `protocol::chat` for the wire shapes.

use std::collections::VecDeque;

use tracing::{debug, trace};

use super::peer::{OutgoingFile, PeerSession};
use super::{Action, ClientMachine, StoreOp};
use crate::event::{ChatEnd, ClientError, ClientEvent};
use crate::protocol::{
    ChatFrame, FEATURE_ACKS, FEATURE_FILES, FEATURE_ROOMS, FILE_CHUNK_BYTES,
    MAX_CHAT_MESSAGE_BYTES, MAX_FILE_BYTES, MAX_FILE_NAME_BYTES, MAX_MEDIA_TYPE_BYTES, MessageId,
    decode_chunk, encode_chunk,
};
use crate::room::RoomFrame;

/// Files one peer may be sending us at once; more are refused.
pub(super) const MAX_INCOMING_FILES: usize = 4;

/// File bytes that may be arriving at once from all peers together (each file counts its
/// announced size from its announcement until it is whole): two largest files. Beyond it
/// a file is refused, so however many peers send at once, the client holds at most this
/// much of their files.
pub const MAX_ARRIVING_FILE_BYTES: u64 = 2 * MAX_FILE_BYTES;

/// Bytes of file chunks that may wait in a chat channel's send buffer. Chunks are handed
/// to the channel only while it holds less, and more follow when it drains to
/// [`SEND_BUFFER_LOW`]: a browser closes a channel whose buffer passes 16 MiB, webrtc-rs
/// buffers without bound, and a file need not be copied into the buffer all at once.
/// 4 MiB keeps a path of up to ~40 ms round trip full at 100 MB/s.
pub(crate) const SEND_BUFFER_HIGH: u64 = 4 * 1024 * 1024;

/// The buffered-amount-low threshold transports set on chat channels.
pub const SEND_BUFFER_LOW: u32 = 1024 * 1024;

/// Refused files whose chunks are still dropped quietly (one error per file, not per chunk).
const MAX_REFUSED_FILES: usize = 16;

/// How long a received message waits for a message of mine to carry its acknowledgement
/// before a separate ack goes. In a conversation the answer carries it, so the channel
/// carries no extra message; a separate ack per message would double the messages and
/// delay each answer behind it (measured: +0.6 ms per round trip in Chromium).
pub(super) const ACK_DELAY_MS: u64 = 20;

/// How long a channel the peer opened waits to hear from it before what waits goes
/// anyway. The peer speaks when its end opens, a round trip after ours.
pub(super) const HEAR_WAIT_MS: u64 = 200;

/// My messages remembered as unacknowledged per peer; the oldest are forgotten first.
const MAX_UNACKED: usize = 4096;

/// Hands the channel file chunks, oldest file first, until its send buffer holds
/// [`SEND_BUFFER_HIGH`] bytes or nothing is left to send.
fn hand_over_chunks(session: &mut PeerSession, actions: &mut VecDeque<Action>) {
    while session.send_buffered < SEND_BUFFER_HIGH {
        let Some(file) = session.sending.front_mut() else {
            return;
        };
        let end = (file.handed + FILE_CHUNK_BYTES).min(file.data.len());
        let chunk = encode_chunk(file.id, &file.data[file.handed..end]);
        file.handed = end;
        if end == file.data.len() {
            session.sending.pop_front();
        }
        session.send_buffered += chunk.len() as u64;
        session.chunk_bytes_handed += chunk.len() as u64;
        actions.push_back(Action::SendData {
            conn: session.conn,
            data: chunk,
        });
    }
}

/// Why a file may not travel, if it may not: the limits both ends apply.
fn file_limits_refusal(name: &str, mime: &str, size: u64) -> Option<String> {
    if size > MAX_FILE_BYTES {
        Some(format!(
            "{size} bytes is over the {MAX_FILE_BYTES}-byte limit"
        ))
    } else if name.len() > MAX_FILE_NAME_BYTES || mime.len() > MAX_MEDIA_TYPE_BYTES {
        Some(format!(
            "the name (at most {MAX_FILE_NAME_BYTES} bytes) or type (at most \
             {MAX_MEDIA_TYPE_BYTES}) is too long"
        ))
    } else {
        None
    }
}

/// How often (in bytes received) progress is reported, to the UI and to the sender.
const PROGRESS_STEP: u64 = 256 * 1024;

/// Most bytes reserved for an incoming file before its chunks arrive; beyond it, the
/// buffer grows as they come.
const UPFRONT_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// A file arriving from a peer.
#[derive(Debug)]
pub(super) struct IncomingFile {
    name: String,
    mime: String,
    size: u64,
    data: Vec<u8>,
    reported: u64,
}

impl ClientMachine {
    /// Sends one chat message to a connected peer. Its id comes back in a
    /// [`ClientEvent::Delivered`] when the peer acknowledges it (peerchat peers only).
    pub fn send_message(&mut self, peer: &str, text: &str) -> Result<MessageId, ClientError> {
        let too_large = |size| ClientError::MessageTooLarge {
            size,
            limit: MAX_CHAT_MESSAGE_BYTES,
        };
        if text.len() > MAX_CHAT_MESSAGE_BYTES {
            return Err(too_large(text.len()));
        }
        // While a lost connection is being recovered, a message waits with the unacknowledged
        // ones and goes out once the new connection opens.
        let Some(session) = self
            .peers
            .get_mut(peer)
            .filter(|s| s.channel_open || (s.recovery.is_some() && s.speaks(FEATURE_ACKS)))
        else {
            return Err(ClientError::PeerNotConnected(peer.to_owned()));
        };
        let id = self.next_message;
        let numbered = session.speaks(FEATURE_ACKS);
        let frame = if numbered {
            ChatFrame::Message {
                id,
                text: text.to_owned(),
                ack: session.ack_pending,
            }
            .encode()
        } else {
            text.to_owned()
        };
        // JSON escaping can grow a text that fitted; the channel's limit is on what is sent.
        if frame.len() > MAX_CHAT_MESSAGE_BYTES {
            return Err(too_large(frame.len()));
        }
        self.next_message += 1;
        if numbered {
            // The message carries the pending acknowledgement.
            session.ack_pending = None;
            session.ack_due = None;
            if session.unacked.len() >= MAX_UNACKED {
                session.unacked.pop_front();
            }
            session.unacked.push_back((id, frame.clone()));
        }
        // Stored before it is handed to the channel: a crash in between loses nothing.
        let conn = (session.channel_open && session.heard).then_some(session.conn);
        self.store(StoreOp::Sent {
            peer: peer.to_owned(),
            id,
            text: text.to_owned(),
            awaiting_ack: numbered,
        });
        if let Some(conn) = conn {
            self.actions
                .push_back(Action::SendText { conn, text: frame });
        }
        Ok(id)
    }

    /// Sends a file (an image, say) to a connected peerchat peer, in chunks. Its id comes
    /// back in [`ClientEvent::Transfer`] progress and a [`ClientEvent::Delivered`] once the
    /// peer has all of it.
    pub fn send_file(
        &mut self,
        peer: &str,
        name: &str,
        mime: &str,
        data: &[u8],
    ) -> Result<MessageId, ClientError> {
        let size = data.len() as u64;
        if size > MAX_FILE_BYTES {
            return Err(ClientError::FileTooLarge {
                size,
                limit: MAX_FILE_BYTES,
            });
        }
        if let Some(why) = file_limits_refusal(name, mime, size) {
            return Err(ClientError::BadFile(why));
        }
        let Some(session) = self.peers.get_mut(peer).filter(|s| s.channel_open) else {
            return Err(ClientError::PeerNotConnected(peer.to_owned()));
        };
        if !session.speaks(FEATURE_FILES) {
            return Err(ClientError::FilesUnsupported(peer.to_owned()));
        }
        // The sender keeps each file until the peer has all of it: what is unacknowledged
        // may not exceed one largest file.
        let in_flight: u64 = session.outgoing_files.values().sum();
        if in_flight + size > MAX_FILE_BYTES {
            return Err(ClientError::TransfersPending(peer.to_owned()));
        }
        let id = self.next_message;
        self.next_message += 1;
        let conn = session.conn;
        session.outgoing_files.insert(id, size);
        // Files are not kept, but their ids are: an id is never used twice within a run.
        self.actions.push_back(Action::Store(StoreOp::Numbering {
            run: self.registration.session().to_owned(),
            next_message: self.next_message,
        }));
        let announce = ChatFrame::File {
            id,
            name: name.to_owned(),
            mime: mime.to_owned(),
            size,
        };
        self.actions.push_back(Action::SendText {
            conn,
            text: announce.encode(),
        });
        if !data.is_empty() {
            session.sending.push_back(OutgoingFile {
                id,
                data: data.to_vec(),
                handed: 0,
            });
            hand_over_chunks(session, &mut self.actions);
        }
        Ok(id)
    }

    /// One text message on a peer's chat channel: plain text from an original client, or a
    /// frame from a peerchat peer.
    pub(super) fn on_chat(&mut self, peer: String, text: String, now: u64) {
        self.heard_from(&peer);
        let session = self.peers.get_mut(&peer).expect("caller found it");
        if session.speaks(FEATURE_ROOMS)
            && let Some(frame) = RoomFrame::decode(&text)
        {
            return self.on_room_frame(&peer, frame, now);
        }
        let frame = if session.speaks(FEATURE_ACKS) || session.speaks(FEATURE_FILES) {
            ChatFrame::decode(&text)
        } else {
            None
        };
        match frame {
            Some(ChatFrame::Message { id, text, ack }) => {
                let fresh = session.last_received.is_none_or(|last| id > last);
                trace!(%peer, id, fresh, ?ack, conn = session.conn, "chat message");
                // Acknowledged with the next message of mine, or alone after a short while.
                session.ack_pending = session.ack_pending.max(Some(id));
                session.ack_due.get_or_insert(now + ACK_DELAY_MS);
                if fresh {
                    session.last_received = Some(id);
                }
                if let Some(upto) = ack {
                    self.acknowledged(&peer, upto);
                }
                if fresh {
                    self.shown(&peer, &text, Some(id));
                    self.events
                        .push_back(ClientEvent::Message { from: peer, text });
                } else {
                    debug!(%peer, id, "duplicate message acknowledged again, not shown twice");
                }
            }
            Some(ChatFrame::Ack { id }) => self.acknowledged(&peer, id),
            Some(ChatFrame::Bye) => {
                self.end_session(&peer, crate::event::PeerStatus::Closed, ChatEnd::PeerLeft)
            }
            Some(ChatFrame::Progress { id, received }) => {
                if let Some(&total) = session.outgoing_files.get(&id) {
                    self.events.push_back(ClientEvent::Transfer {
                        peer,
                        id,
                        incoming: false,
                        done: received.min(total),
                        total,
                    });
                }
            }
            Some(ChatFrame::File {
                id,
                name,
                mime,
                size,
            }) => {
                let everywhere = self.arriving_file_bytes();
                let session = self.peers.get_mut(&peer).expect("caller found it");
                let arriving: u64 = session.incoming_files.values().map(|f| f.size).sum();
                let refusal = file_limits_refusal(&name, &mime, size)
                    .or_else(|| {
                        (session.incoming_files.len() >= MAX_INCOMING_FILES)
                            .then(|| format!("more than {MAX_INCOMING_FILES} files at once"))
                    })
                    .or_else(|| {
                        (arriving + size > MAX_FILE_BYTES)
                            .then(|| format!("more than {MAX_FILE_BYTES} bytes at once"))
                    })
                    .or_else(|| {
                        (everywhere + size > MAX_ARRIVING_FILE_BYTES).then(|| {
                            format!(
                                "more than {MAX_ARRIVING_FILE_BYTES} bytes arriving at once \
                                 from all peers; send it again later"
                            )
                        })
                    });
                if let Some(detail) = refusal {
                    session.refuse_file(id, MAX_REFUSED_FILES);
                    return self.unexpected(peer, "file", &detail);
                }
                session.incoming_files.insert(
                    id,
                    IncomingFile {
                        name,
                        mime,
                        size,
                        data: Vec::new(),
                        reported: 0,
                    },
                );
                self.events.push_back(ClientEvent::Transfer {
                    peer: peer.clone(),
                    id,
                    incoming: true,
                    done: 0,
                    total: size,
                });
                if size == 0 {
                    self.finish_incoming(peer, id);
                }
            }
            // Not a frame: shown as it came, so nothing a peer sends is lost.
            None => {
                self.shown(&peer, &text, None);
                self.events
                    .push_back(ClientEvent::Message { from: peer, text })
            }
        }
    }

    /// Announced bytes of every file arriving now, from all peers.
    fn arriving_file_bytes(&self) -> u64 {
        let files = self.peers.values().flat_map(|s| s.incoming_files.values());
        files.map(|file| file.size).sum()
    }

    /// The channel has room again: hands it the next chunks. Its buffer holds what it
    /// reported plus every chunk handed over since.
    pub(super) fn on_send_buffer_low(&mut self, peer: &str, buffered: u64, chunk_bytes: u64) {
        let session = self.peers.get_mut(peer).expect("caller found it");
        let not_yet_written = session.chunk_bytes_handed.saturating_sub(chunk_bytes);
        session.send_buffered = buffered + not_yet_written;
        hand_over_chunks(session, &mut self.actions);
    }

    /// The peer has everything of mine numbered up to `upto`, and file `upto` if it is one.
    fn acknowledged(&mut self, peer: &str, upto: MessageId) {
        let session = self.peers.get_mut(peer).expect("caller found it");
        let mut delivered = Vec::new();
        if session.outgoing_files.remove(&upto).is_some() {
            delivered.push(upto);
        }
        let mut left_outbox = false;
        while let Some(&(id, _)) = session.unacked.front()
            && id <= upto
        {
            session.unacked.pop_front();
            delivered.push(id);
            left_outbox = true;
        }
        if left_outbox {
            self.store(StoreOp::Acknowledged {
                peer: peer.to_owned(),
                upto,
            });
        }
        delivered.sort_unstable();
        for id in delivered {
            self.events.push_back(ClientEvent::Delivered {
                peer: peer.to_owned(),
                id,
            });
        }
    }

    /// Anything on the chat channel proves its path works: a chat being recovered on the
    /// same connection is back. On a channel the peer opened, it also proves the peer's end
    /// is open: what waited goes now. (A message sent the moment such a channel opened
    /// could reach the other end before its own channel had opened there, and be lost
    /// while the next one arrived: webrtc-rs lost one so, now and then, with a browser
    /// answering, and the cumulative ack that followed covered it.)
    fn heard_from(&mut self, peer: &str) {
        let session = self.peers.get_mut(peer).expect("caller found it");
        let first = !session.heard && session.channel_open;
        if first {
            session.heard = true;
            session.hear_by = None;
        }
        if session.recovery.is_some() && session.channel_open {
            self.path_back(peer);
        } else if first {
            self.finish_recovery(peer);
        }
    }

    /// Channels whose peer stayed silent since they opened count as heard after
    /// [`HEAR_WAIT_MS`]: a peer that does not say so when its end opens still gets what
    /// waited.
    pub(super) fn hear_anyway(&mut self, now: u64) {
        let silent: Vec<String> = (self.peers.iter())
            .filter(|(_, s)| s.hear_by.is_some_and(|at| at <= now))
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in silent {
            self.heard_from(&peer);
        }
    }

    /// A frame that says nothing new (an acknowledgement of what is already acknowledged),
    /// sent after an ICE restart so the peer learns when the path works again.
    pub(super) fn send_sign_of_life(&mut self, peer: &str) {
        let session = &self.peers[peer];
        if !session.channel_open || !session.speaks(FEATURE_ACKS) {
            return;
        }
        let id = session.last_received.unwrap_or(0);
        self.actions.push_back(Action::SendText {
            conn: session.conn,
            text: ChatFrame::Ack { id }.encode(),
        });
    }

    /// Sends the acknowledgements no message of mine carried in time.
    pub(super) fn send_due_acks(&mut self, now: u64) {
        // A chat between connections keeps its ack for the next message or connection.
        for session in self.peers.values_mut().filter(|s| s.channel_open) {
            if session.ack_due.is_some_and(|due| due <= now) {
                session.ack_due = None;
                if let Some(id) = session.ack_pending.take() {
                    self.actions.push_back(Action::SendText {
                        conn: session.conn,
                        text: ChatFrame::Ack { id }.encode(),
                    });
                }
            }
        }
    }

    /// One binary message: a chunk of a file the peer announced. From a peer without
    /// files (an original client), it is text in bytes, shown as text as it always was.
    pub(super) fn on_chat_data(&mut self, peer: String, chunk: &[u8]) {
        self.heard_from(&peer);
        let session = self.peers.get_mut(&peer).expect("caller found it");
        if !session.speaks(FEATURE_FILES) {
            let text = String::from_utf8_lossy(chunk).into_owned();
            self.shown(&peer, &text, None);
            return self
                .events
                .push_back(ClientEvent::Message { from: peer, text });
        }
        let Some((id, data)) = decode_chunk(chunk) else {
            return self.unexpected(peer, "file chunk", "too short to name its file");
        };
        if session.refused_files.contains(&id) {
            return;
        }
        let Some(file) = session.incoming_files.get_mut(&id) else {
            return self.unexpected(peer, "file chunk", &format!("file {id} was not announced"));
        };
        if file.data.len() as u64 + data.len() as u64 > file.size {
            session.incoming_files.remove(&id);
            session.refuse_file(id, MAX_REFUSED_FILES);
            return self.unexpected(peer, "file chunk", &format!("file {id} outgrew its size"));
        }
        if file.data.is_empty() {
            // Room for the whole file at once, so a large one is not copied as it grows;
            // only once the peer has started sending it.
            // Capped, so announcing a huge file costs nothing until its bytes arrive.
            file.data
                .reserve_exact((file.size as usize).min(UPFRONT_BUFFER_BYTES));
        }
        file.data.extend_from_slice(data);
        let received = file.data.len() as u64;
        let conn = session.conn;
        if received == file.size {
            return self.finish_incoming(peer, id);
        }
        if received - file.reported >= PROGRESS_STEP {
            file.reported = received;
            let total = file.size;
            self.actions.push_back(Action::SendText {
                conn,
                text: ChatFrame::Progress { id, received }.encode(),
            });
            self.events.push_back(ClientEvent::Transfer {
                peer,
                id,
                incoming: true,
                done: received,
                total,
            });
        }
    }

    /// Hands a complete file to the application and acknowledges it.
    fn finish_incoming(&mut self, peer: String, id: MessageId) {
        let session = self.peers.get_mut(&peer).expect("caller found it");
        let Some(file) = session.incoming_files.remove(&id) else {
            return;
        };
        let conn = session.conn;
        // The file's ack says everything before it arrived too (the channel is ordered).
        if session.ack_pending.is_some_and(|pending| pending <= id) {
            session.ack_pending = None;
            session.ack_due = None;
        }
        self.actions.push_back(Action::SendText {
            conn,
            text: ChatFrame::Ack { id }.encode(),
        });
        self.events.push_back(ClientEvent::Transfer {
            peer: peer.clone(),
            id,
            incoming: true,
            done: file.size,
            total: file.size,
        });
        self.events.push_back(ClientEvent::File {
            from: peer,
            id,
            name: file.name,
            mime: file.mime,
            data: file.data,
        });
    }
}

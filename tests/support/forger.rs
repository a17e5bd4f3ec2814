//! A hostile client for the room tests: a browser page whose JavaScript goes behind its own
//! peerchat client's back. It taps the page's data channels (every channel of its peer
//! connections, and every room message its client writes), and it writes room frames of its own,
//! signed with the page's identity key through the browser's WebCrypto, in any name and
//! with any numbers, on every open channel: what a member or a stranger who patched their
//! client would send. The honest clients under test must refuse them.

use serde_json::{Value, json};

use crate::ChatClient;
use crate::browser_client::BrowserClient;

/// Taps every channel of the page's peer connections (those it opens and those opened to
/// it) and every room message its client sends. Installed before the client makes any
/// connection; the glue of the page's WebAssembly looks `RTCPeerConnection` and `send` up
/// on each call, so both go through the tap.
const TAP: &str = r#"
if (!window.peerchatTap) {
  const tap = window.peerchatTap = { channels: [], roomMessages: [] };
  const keep = channel => { if (!tap.channels.includes(channel)) tap.channels.push(channel); };
  const Connection = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Connection {
    constructor(...args) {
      super(...args);
      this.addEventListener('datachannel', e => keep(e.channel));
    }
    createDataChannel(...args) {
      const channel = super.createDataChannel(...args);
      keep(channel);
      return channel;
    }
  };
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (typeof data === 'string' && data.includes('"room"')) {
      try {
        const frame = JSON.parse(data);
        if (frame.type === 'room' && frame.op === 'message') tap.roomMessages.push(frame);
      } catch (_) {}
    }
    return send.call(this, data);
  };
}
return null;
"#;

/// Signs a room message's fields with the page user's key (its Ed25519 seed, as the page's
/// client keeps it in `localStorage`) over the bytes a room message signs, and sends the
/// frame on every open channel. Returns `[channels, null]` or `[null, error]`.
const FORGE: &str = r#"
const [user, fields, done] = arguments;
const fromText = text => Uint8Array.from(
  atob(text.replace(/-/g, '+').replace(/_/g, '/')), c => c.charCodeAt(0));
const toText = bytes => btoa(String.fromCharCode(...bytes))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
(async () => {
  const seed = fromText(localStorage.getItem('peerchat.identity.' + user));
  // PKCS #8 for an Ed25519 private key: a fixed header, then the 32-byte seed.
  const header = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
                  0x04, 0x22, 0x04, 0x20];
  const key = await crypto.subtle.importKey(
    'pkcs8', new Uint8Array([...header, ...seed]), { name: 'Ed25519' }, false, ['sign']);
  const f = fields;
  const signed = `peerchat room message v1\n${f.room}\n${f.author}\n${f.seq}\n` +
                 `${f.lamport}\n${f.members}\n${f.text}`;
  const sig = await crypto.subtle.sign(
    { name: 'Ed25519' }, key, new TextEncoder().encode(signed));
  const frame = JSON.stringify({
    type: 'room', op: 'message', room: f.room, author: f.author, seq: f.seq,
    lamport: f.lamport, members: f.members, text: f.text, sig: toText(new Uint8Array(sig)),
  });
  const open = window.peerchatTap.channels.filter(c => c.readyState === 'open');
  open.forEach(c => c.send(frame));
  return open.length;
})().then(sent => done([sent, null]), e => done([null, String(e)]));
"#;

/// A browser page that joined like any other and can then write what its client never
/// would.
pub struct Forger {
    pub page: BrowserClient,
}

impl Forger {
    /// Opens the test page, taps its channels, then joins `server_url` as `user`.
    pub fn join(page_url: &str, server_url: &str, user: &str) -> Self {
        let mut page = BrowserClient::open(page_url, user);
        page.run(TAP, json!([]));
        if let Err(error) = page.connect(server_url) {
            panic!("{user}: connect to {server_url} failed: {error}");
        }
        page.expect("connected", &|e| {
            e["event"] == "connected" && e["user"] == user
        });
        Self { page }
    }

    /// Waits until `count` of the page's channels are open: chats it is in.
    pub fn wait_for_channels(&self, count: u64) {
        let script = "return window.peerchatTap.channels \
                      .filter(c => c.readyState === 'open').length;";
        crate::wait_for(&format!("{}: {count} open chats", self.page.user), || {
            (self.page.run(script, json!([])).as_u64() >= Some(count)).then_some(())
        });
    }

    /// The last room message this page's own client wrote, as it went on the wire.
    pub fn last_written(&self) -> Value {
        let written = self.page.run(
            "return window.peerchatTap.roomMessages.at(-1) ?? null;",
            json!([]),
        );
        assert!(
            written.is_object(),
            "{}: its client has written no room message",
            self.page.user
        );
        written
    }

    /// Sends a room message with `fields` (room, author, seq, lamport, members, text),
    /// signed with this page's own key, to every peer it chats with; returns how many.
    pub fn send_signed(&self, fields: Value) -> u64 {
        let outcome = self.page.run_async(FORGE, json!([self.page.user, fields]));
        outcome[0]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: forging failed: {}", self.page.user, outcome[1]))
    }
}

//! Steady traffic for tests that disturb a chat (network switches): both sides write a
//! numbered message at a fixed pace throughout, then every message is checked (arrived
//! once, in order, never refused) and the pauses are measured on the test's clock.

use std::io::Write;
use std::process::ChildStdin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{ChatClient, Cli, PATIENCE, clock_ms};

/// How often each side writes.
pub const WRITE_EVERY: Duration = Duration::from_millis(100);

/// The text of `writer`'s message number `n` (counted from 1).
pub fn numbered(writer: &str, n: u64) -> String {
    format!("{writer} #{n}")
}

/// What one side wrote while writing steadily.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// When each message was handed to the client (ms on [`clock_ms`]'s clock); message
    /// `n` is at `n - 1`.
    pub at: Vec<f64>,
    /// How many of them the client refused (`sent` with `ok: false`).
    pub refused: u64,
}

impl Written {
    pub fn count(&self) -> u64 {
        self.at.len() as u64
    }
}

/// A client that writes steadily and is read without waiting for anything in particular.
pub trait SteadyClient: ChatClient {
    /// Starts writing `numbered(me, 1..)` to `peer`, one every [`WRITE_EVERY`].
    fn start_writing(&mut self, peer: &str);

    /// Stops writing; says how many were written and refused.
    fn stop_writing(&mut self) -> Written;

    /// Reads in every event that arrives within `wait`.
    fn take_in(&mut self, wait: Duration);

    /// Every event so far, each stamped `at` (ms on [`clock_ms`]'s clock).
    fn events(&self) -> &[Value];
}

/// Writes `/send` lines into a CLI's stdin at a steady pace from a thread of its own, so
/// the test can switch networks meanwhile.
pub struct CliWriter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(ChildStdin, Vec<f64>)>,
}

impl CliWriter {
    fn start(mut stdin: ChildStdin, me: String, peer: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut at = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                at.push(clock_ms());
                let n = at.len() as u64;
                writeln!(stdin, "/send {peer} {}", numbered(&me, n))
                    .and_then(|()| stdin.flush())
                    .expect("the client reads its stdin");
                // On a fixed schedule, so a slow write does not stretch the pace.
                let next = started + WRITE_EVERY * n as u32;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            (stdin, at)
        });
        Self { stop, thread }
    }

    fn stop(self) -> (ChildStdin, Vec<f64>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the writer thread ends")
    }
}

impl SteadyClient for Cli {
    fn start_writing(&mut self, peer: &str) {
        let stdin = self
            .stdin
            .take()
            .expect("stdin is open and not being written");
        self.writer = Some(CliWriter::start(stdin, self.user.clone(), peer.to_owned()));
    }

    fn stop_writing(&mut self) -> Written {
        let writer = self.writer.take().expect("the client is writing");
        let (stdin, at) = writer.stop();
        self.stdin = Some(stdin);
        // Every line gets its `sent` answer; the last ones may still be on their way.
        let answered = |seen: &[Value]| {
            let sent = seen.iter().filter(|e| e["event"] == "sent");
            let refused = sent.clone().filter(|e| e["ok"] != true).count() as u64;
            (sent.count(), refused)
        };
        let started = Instant::now();
        while answered(self.seen()).0 < at.len() {
            assert!(
                started.elapsed() < PATIENCE,
                "{}: {} written, {} answered",
                self.user,
                at.len(),
                answered(self.seen()).0
            );
            self.gather(Duration::from_millis(20));
        }
        let refused = answered(self.seen()).1;
        Written { at, refused }
    }

    fn take_in(&mut self, wait: Duration) {
        self.gather(wait);
    }

    fn events(&self) -> &[Value] {
        self.seen()
    }
}

/// A client's events other than messages and accepted sends, one per line, for failures.
pub fn story(events: &[Value]) -> String {
    let told = (events.iter())
        .filter(|e| e["event"] != "message" && !(e["event"] == "sent" && e["ok"] == true))
        .map(Value::to_string);
    told.collect::<Vec<_>>().join("\n")
}

/// The messages from `from` among a client's events.
fn messages_from<'a>(events: &'a [Value], from: &'a str) -> impl Iterator<Item = &'a Value> {
    (events.iter()).filter(move |e| e["event"] == "message" && e["from"] == from)
}

/// Waits until `client` has seen `from`'s message number `n`.
pub fn wait_for_message(client: &mut dyn SteadyClient, from: &str, n: u64) {
    let text = numbered(from, n);
    let started = Instant::now();
    while !messages_from(client.events(), from).any(|e| e["text"] == text.as_str()) {
        assert!(
            started.elapsed() < PATIENCE,
            "{}: `{text}` did not arrive within {PATIENCE:?}; what it saw besides messages: {}",
            client.user(),
            story(client.events())
        );
        client.take_in(Duration::from_millis(20));
    }
}

/// Waits until messages flow both ways again after `since` (ms on the test's clock): each
/// side has received one after it.
pub fn wait_until_flowing(a: &mut dyn SteadyClient, b: &mut dyn SteadyClient, since: f64) {
    let started = Instant::now();
    loop {
        let (a_name, b_name) = (a.user().to_owned(), b.user().to_owned());
        let heard = |c: &dyn SteadyClient, from: &str| {
            messages_from(c.events(), from).any(|e| e["at"].as_f64() > Some(since))
        };
        if heard(a, &b_name) && heard(b, &a_name) {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "messages between {a_name} and {b_name} did not flow again within {PATIENCE:?}; \
             {a_name} saw {}; {b_name} saw {}",
            story(a.events()),
            story(b.events())
        );
        a.take_in(Duration::from_millis(5));
        b.take_in(Duration::from_millis(5));
    }
}

/// The arrival times of `from`'s messages at `who`, after checking that they are exactly
/// `numbered(from, 1..=written)`: each once, in order, none missing. `Err` says what is
/// wrong, with `who`'s events around the first message out of place.
pub fn arrivals(who: &str, events: &[Value], from: &str, written: u64) -> Result<Vec<f64>, String> {
    let received: Vec<&Value> = messages_from(events, from).collect();
    let texts: Vec<&str> = (received.iter())
        .map(|e| e["text"].as_str().unwrap_or_default())
        .collect();
    let expected: Vec<String> = (1..=written).map(|n| numbered(from, n)).collect();
    if texts == expected {
        return Ok((received.iter())
            .map(|e| e["at"].as_f64().expect("events are stamped"))
            .collect());
    }
    let wrong = (texts.iter().zip(&expected))
        .position(|(got, want)| got != want)
        .unwrap_or(texts.len().min(expected.len()));
    let around = received
        .get(wrong.saturating_sub(1))
        .and_then(|e| e["at"].as_f64())
        .unwrap_or_default();
    let nearby: Vec<String> = (events.iter())
        .filter(|e| {
            e["at"]
                .as_f64()
                .is_some_and(|at| (at - around).abs() < 1_500.0)
        })
        .map(Value::to_string)
        .collect();
    Err(format!(
        "{who} received {} of {from}'s {written} messages; the first out of place is number \
         {} (once each, in order, was expected); {who}'s events around it:\n{}",
        texts.len(),
        wrong + 1,
        nearby.join("\n")
    ))
}

/// Checks that the chat with `peer` never ended on `who`'s side: no `closed` or `failed`
/// status, no `peer_disconnected`.
pub fn assert_chat_never_ended(who: &str, events: &[Value], peer: &str) {
    let ended: Vec<&Value> = (events.iter())
        .filter(|e| e["peer"] == peer)
        .filter(|e| {
            e["event"] == "peer_disconnected"
                || (e["event"] == "status" && (e["status"] == "closed" || e["status"] == "failed"))
        })
        .collect();
    assert!(
        ended.is_empty(),
        "{who}'s chat with {peer} ended while it was being recovered: {ended:?}; {who} saw:\n{}",
        story(events)
    );
}

/// How long after `since` (ms on the test's clock) messages flowed again both ways: in
/// each direction, when the first message written after it arrived (what was on its way
/// before may still trickle in); the later of the directions. `directions` pairs each
/// writer's write times with the receiver's arrival times, message by message.
pub fn flowing_again_ms(since: f64, directions: &[(&[f64], &[f64])]) -> f64 {
    let first_written_after = |(written, arrived): &(&[f64], &[f64])| {
        let (_, arrived) = (written.iter().zip(arrived.iter()))
            .find(|&(&written, _)| written >= since)
            .expect("messages were written after every switch");
        arrived - since
    };
    directions
        .iter()
        .map(first_written_after)
        .fold(0.0, f64::max)
}

/// The longest any message written within `from..to` (ms on the test's clock) took to
/// arrive. `directions` pairs each writer's write times with the receiver's arrival times,
/// message by message.
pub fn held_up_ms(from: f64, to: f64, directions: &[(&[f64], &[f64])]) -> f64 {
    (directions.iter())
        .flat_map(|(written, arrived)| written.iter().zip(arrived.iter()))
        .filter(|&(&written, _)| (from..to).contains(&written))
        .map(|(written, arrived)| arrived - written)
        .fold(0.0, f64::max)
}

/// The longest time between two arrivals, or between `from` and the first, within
/// `from..to` (ms on the test's clock).
pub fn longest_silence_ms(arrivals: &[f64], from: f64, to: f64) -> f64 {
    let mut last = from;
    let mut longest: f64 = 0.0;
    for &at in arrivals.iter().filter(|&&at| at > from && at <= to) {
        longest = longest.max(at - last);
        last = at;
    }
    longest
}

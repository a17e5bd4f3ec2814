//! peerchat-server's connection state machine fed arbitrary bytes from a client: it must
//! never panic, and never let through what its rules forbid. Every registration it asks for
//! is granted (so the fuzzer reaches a registered client quickly); then every delivery must
//! be a non-retained message on the recipient's inbox that speaks in the client's own name,
//! and every presence watch an exact, valid name within the cap.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerchat_core::protocol::{incoming_topic, validate_username};
use peerchat_server::connection::{
    Connection, FrameBuffer, Output, Registered, Request, parse, speaks_as,
};
use peerchat_server::limits::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut connection = Connection::new(limits, "fuzz-nonce".to_owned(), 0);
    let mut frames = FrameBuffer::new(peerchat_core::protocol::MAX_MQTT_PACKET_BYTES);
    let mut name: Option<String> = None;
    let mut watches = 0usize;
    let mut now = 0;
    // The first byte of each chunk says how much time passes before it arrives.
    for chunk in data.chunks(97) {
        now += u64::from(chunk[0]) * 50;
        connection.handle_timeout(now);
        frames.extend(&chunk[1..]);
        loop {
            match frames.next_frame() {
                Ok(Some(frame)) => match parse(frame) {
                    Ok(packet) => connection.handle_packet(packet, now),
                    Err(error) => connection.handle_malformed(error.to_string()),
                },
                Ok(None) => break,
                Err(error) => {
                    connection.handle_malformed(error.to_string());
                    break;
                }
            }
            check(&mut connection, &mut name, &mut watches, &limits);
        }
        check(&mut connection, &mut name, &mut watches, &limits);
    }
});

fn check(connection: &mut Connection, name: &mut Option<String>, watches: &mut usize, limits: &Limits) {
    while let Some(output) = connection.poll_output() {
        match output {
            Output::Hub(Request::Register(claim)) => {
                assert!(name.is_none(), "a second name on one connection");
                validate_username(&claim.name).expect("a valid name");
                connection.registered(&claim.name, Registered::Granted);
                *name = Some(claim.name);
            }
            Output::Hub(Request::Deliver { target, publish }) => {
                let me = name.as_deref().expect("delivered for an unregistered client");
                validate_username(&target).expect("a valid recipient");
                assert_eq!(publish.topic, incoming_topic(&target));
                assert!(!publish.retain, "a retained delivery");
                speaks_as(&publish.payload, me).expect("a message in someone else's name");
            }
            Output::Hub(Request::Watch(user)) => {
                validate_username(&user).expect("a watch of a valid name");
                *watches += 1;
                assert!(*watches <= limits.watches_per_connection, "over the watch cap");
            }
            Output::Hub(Request::Unwatch(_)) => *watches = watches.saturating_sub(1),
            Output::Hub(Request::Listen(_)) => {
                assert!(name.is_some(), "an inbox before a name");
            }
            Output::Send(_) | Output::Close { .. } => {}
        }
    }
}

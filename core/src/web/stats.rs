//! Reads how a browser peer connection runs from `RTCPeerConnection.getStats()`: the
//! selected candidate pair's types and its current round-trip time.

use std::collections::HashMap;

use js_sys::{Map, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

use crate::path::{PathKind, PeerPath};

/// The connection's path, or `None` while no candidate pair is selected.
pub(super) async fn read_path(pc: &RtcPeerConnection) -> Option<PeerPath> {
    let report = JsFuture::from(pc.get_stats()).await.ok()?;
    // An RTCStatsReport is map-like: `forEach` walks it as a Map's would.
    let mut entries = HashMap::new();
    report.unchecked_ref::<Map>().for_each(&mut |value, key| {
        if let Some(id) = key.as_string() {
            entries.insert(id, value);
        }
    });
    path_of(&entries)
}

/// Picks the selected pair (the transport's `selectedCandidatePairId`, else the nominated
/// succeeded pair) and classifies it.
fn path_of(entries: &HashMap<String, JsValue>) -> Option<PeerPath> {
    let selected_id =
        of_type(entries, "transport").find_map(|t| text(t, "selectedCandidatePairId"));
    let pair = match selected_id.and_then(|id| entries.get(&id)) {
        Some(pair) => pair,
        None => of_type(entries, "candidate-pair")
            .find(|p| flag(p, "nominated") && text(p, "state").as_deref() == Some("succeeded"))?,
    };
    let candidate = |field: &str| entries.get(&text(pair, field)?);
    let (local, remote) = (
        candidate("localCandidateId")?,
        candidate("remoteCandidateId")?,
    );
    let local_type = text(local, "candidateType")?;
    let remote_type = text(remote, "candidateType")?;
    let remote_ip = text(remote, "address").and_then(|a| a.parse().ok());
    let rtt_ms = number(pair, "currentRoundTripTime").map(|seconds| seconds * 1000.0);
    Some(PeerPath {
        kind: PathKind::classify(&local_type, &remote_type, remote_ip),
        rtt_ms,
    })
}

fn of_type<'a>(
    entries: &'a HashMap<String, JsValue>,
    kind: &'a str,
) -> impl Iterator<Item = &'a JsValue> + 'a {
    entries
        .values()
        .filter(move |e| text(e, "type").as_deref() == Some(kind))
}

fn field(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn text(object: &JsValue, name: &str) -> Option<String> {
    field(object, name).as_string()
}

fn number(object: &JsValue, name: &str) -> Option<f64> {
    field(object, name).as_f64()
}

fn flag(object: &JsValue, name: &str) -> bool {
    field(object, name).as_bool() == Some(true)
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    fn entry(json: &str) -> JsValue {
        js_sys::JSON::parse(json).unwrap()
    }

    fn report(items: &[(&str, &str)]) -> HashMap<String, JsValue> {
        items
            .iter()
            .map(|(id, json)| ((*id).to_owned(), entry(json)))
            .collect()
    }

    #[wasm_bindgen_test]
    fn the_transports_selected_pair_is_read() {
        let entries = report(&[
            ("T", r#"{"type":"transport","selectedCandidatePairId":"P"}"#),
            (
                "P",
                r#"{"type":"candidate-pair","localCandidateId":"L","remoteCandidateId":"R",
                    "currentRoundTripTime":0.0015}"#,
            ),
            ("L", r#"{"type":"local-candidate","candidateType":"host"}"#),
            (
                "R",
                r#"{"type":"remote-candidate","candidateType":"prflx","address":"192.168.1.9"}"#,
            ),
        ]);
        let path = path_of(&entries).expect("a selected pair");
        assert_eq!(path.kind, PathKind::Direct);
        assert!((path.rtt_ms.unwrap() - 1.5).abs() < 1e-9);
    }

    #[wasm_bindgen_test]
    fn without_a_transport_the_nominated_pair_counts_and_relays_show() {
        let entries = report(&[
            (
                "P",
                r#"{"type":"candidate-pair","state":"succeeded","nominated":true,
                    "localCandidateId":"L","remoteCandidateId":"R"}"#,
            ),
            ("L", r#"{"type":"local-candidate","candidateType":"relay"}"#),
            ("R", r#"{"type":"remote-candidate","candidateType":"host"}"#),
        ]);
        let path = path_of(&entries).expect("a nominated pair");
        assert_eq!(path.kind, PathKind::Relayed);
        assert_eq!(path.rtt_ms, None);
    }

    #[wasm_bindgen_test]
    fn no_pair_no_path() {
        let entries = report(&[(
            "P",
            r#"{"type":"candidate-pair","state":"in-progress","localCandidateId":"L"}"#,
        )]);
        assert_eq!(path_of(&entries), None);
    }
}

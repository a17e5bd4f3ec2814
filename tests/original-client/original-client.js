// Stand-in for the original React + TypeScript chat client, as /work/shared/PROTOCOL.md
// describes it: mqtt.js over WebSocket for signaling, RTCPeerConnection for chats.
//
// It copies the original's behaviour on purpose, defects included (candidates that arrive
// before the remote description are dropped; a peer is torn down on `disconnected`), because
// peerchat must cope with them. Tests drive it through `window.original`; its events use the
// same JSON shapes as peerchat's test page (tests/browser-page), so one harness reads both.
//
// Assumption (not the original's behaviour): the original was only ever used with its own
// server, which always answers `register`. Against a plain broker (Mosquitto) no
// `register-ack` comes, so after `registerTimeoutMs` of silence this stand-in counts itself
// connected, so it can be used there at all.
"use strict";

(() => {
    const events = [];
    let client = null;
    let me = null;
    // peer name -> { pc, channel }
    const peers = new Map();
    // Test hook: answer every message with itself (the far end of round-trip benchmarks).
    let echo = false;

    function record(event) {
        event.t = performance.now();
        events.push(event);
    }

    function publish(target, message) {
        client.publish(`${target}/incoming`, JSON.stringify(message));
    }

    // Resolves true on register-ack success, false on a taken name or a failed connection
    // (as the original's connect() did); true after `registerTimeoutMs` of silence.
    function connect(serverUrl, username, registerTimeoutMs = 3000) {
        me = username;
        return new Promise((resolve) => {
            let settled = false;
            let timer = null;
            const settle = (ok, extra) => {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                if (ok) {
                    record({ event: "connected", user: username, ...extra });
                } else {
                    record({ event: "connect_failed", user: username, ...extra });
                    client.end(true);
                }
                resolve(ok);
            };
            client = mqtt.connect(serverUrl, {
                protocolVersion: 4, // MQTT 3.1.1
                clientId: username,
                clean: true,
                connectTimeout: 4000,
            });
            client.on("connect", () => {
                const incoming = `${username}/incoming`;
                client.subscribe(incoming, (error) => {
                    if (error) return settle(false, { reason: String(error) });
                    client.publish("system/register", JSON.stringify({
                        type: "register", from: username, username,
                    }));
                    // The stand-in's assumption, see the top of this file.
                    timer = setTimeout(() => settle(true, { assumed: true }), registerTimeoutMs);
                });
            });
            client.on("error", (error) => {
                record({ event: "error", message: String(error) });
                settle(false, { reason: String(error) });
            });
            client.on("message", (topic, payload) => {
                let message;
                try {
                    message = JSON.parse(payload.toString());
                } catch (error) {
                    record({ event: "error", message: `bad JSON: ${error}` });
                    return;
                }
                if (message.type === "register-ack") {
                    settle(message.success === true, { message: message.message });
                } else {
                    onSignal(message);
                }
            });
        });
    }

    function onSignal(message) {
        const from = message.from;
        switch (message.type) {
            case "signal-offer":
                return onOffer(from, message.offer);
            case "signal-answer": {
                const peer = peers.get(from);
                if (peer) {
                    peer.pc.setRemoteDescription(message.answer)
                        .catch((e) => record({ event: "error", message: `answer: ${e}` }));
                }
                return;
            }
            case "signal-candidate": {
                const peer = peers.get(from);
                // The original's defect, kept: no queue for early candidates.
                if (!peer || !peer.pc.remoteDescription) {
                    record({ event: "candidate_dropped", peer: from });
                    return;
                }
                peer.pc.addIceCandidate(message.candidate)
                    .catch((e) => record({ event: "error", message: `candidate: ${e}` }));
                return;
            }
            case "delivery-failed":
                record({ event: "delivery_failed", peer: message.target });
                return;
            default:
                // Unknown types (presence, ...) are ignored, as the original does.
                return;
        }
    }

    function newPeer(name) {
        const old = peers.get(name);
        if (old) old.pc.close();
        const pc = new RTCPeerConnection();
        const peer = { pc, channel: null, open: false };
        peers.set(name, peer);
        pc.onicecandidate = (e) => {
            if (e.candidate) {
                publish(name, { type: "signal-candidate", from: me, candidate: e.candidate.toJSON() });
            }
        };
        // The original's defect, kept: `disconnected` (often transient) ends the chat.
        pc.onconnectionstatechange = () => {
            if (["disconnected", "failed", "closed"].includes(pc.connectionState)) {
                tearDown(name, peer);
            }
        };
        return peer;
    }

    function useChannel(name, peer, channel) {
        peer.channel = channel;
        channel.onopen = () => {
            peer.open = true;
            record({ event: "peer_connected", peer: name });
        };
        channel.onmessage = (e) => {
            record({ event: "message", from: name, text: String(e.data) });
            if (echo) send(name, String(e.data));
            const waiter = awaitingEcho;
            if (waiter && waiter.peer === name) {
                awaitingEcho = null;
                waiter.resolve(performance.now());
            }
        };
        channel.onclose = () => tearDown(name, peer);
    }

    function tearDown(name, peer) {
        if (peers.get(name) !== peer) return;
        peers.delete(name);
        peer.pc.close();
        record({ event: "peer_disconnected", peer: name });
    }

    async function onOffer(from, offer) {
        const peer = newPeer(from);
        peer.pc.ondatachannel = (e) => useChannel(from, peer, e.channel);
        try {
            await peer.pc.setRemoteDescription(offer);
            await peer.pc.setLocalDescription(await peer.pc.createAnswer());
            const answer = peer.pc.localDescription;
            publish(from, { type: "signal-answer", from: me, answer: { type: answer.type, sdp: answer.sdp } });
        } catch (e) {
            record({ event: "error", message: `offer: ${e}` });
        }
    }

    async function connectToPeer(name) {
        const peer = newPeer(name);
        useChannel(name, peer, peer.pc.createDataChannel("chat", { ordered: true }));
        try {
            await peer.pc.setLocalDescription(await peer.pc.createOffer());
            const offer = peer.pc.localDescription;
            publish(name, { type: "signal-offer", from: me, offer: { type: offer.type, sdp: offer.sdp } });
        } catch (e) {
            record({ event: "error", message: `offer: ${e}` });
        }
    }

    function send(name, text) {
        const peer = peers.get(name);
        if (!peer || !peer.channel || peer.channel.readyState !== "open") return false;
        peer.channel.send(text);
        return true;
    }

    function takeEvents() {
        return JSON.stringify(events.splice(0));
    }

    // Test hook: leave the chat with `name`, as closing it in the original's UI did.
    function closePeer(name) {
        const peer = peers.get(name);
        if (peer) tearDown(name, peer);
    }

    // Test hook: round trips timed inside the page, with no WebDriver call between them.
    // Sends `n` messages to `name`, each once the previous one came back; resolves with
    // every round trip in ms.
    let awaitingEcho = null;
    async function pingLoop(name, n) {
        const rtts = [];
        for (let i = 0; i < n; i++) {
            const echoed = new Promise((resolve) => { awaitingEcho = { peer: name, resolve }; });
            const start = performance.now();
            if (!send(name, `ping ${i}`)) throw new Error(`send to ${name} refused`);
            rtts.push((await echoed) - start);
        }
        return rtts;
    }

    function setEcho(on) {
        echo = on;
    }

    window.original = { connect, connectToPeer, send, closePeer, setEcho, takeEvents, pingLoop };
    window.originalReady = typeof mqtt !== "undefined" && typeof mqtt.connect === "function";
    if (!window.originalReady) window.originalError = "mqtt.min.js did not load";
})();

//! Register proofs: a peerchat client's signature, with its identity key, over the fresh
//! value peerchat-server gave its connection. The server binds a name to the first key that
//! proves itself for it, and hands the name to a new connection only against a new proof
//! by that key, so neither a public session id nor a captured register can take a name.

/// Longest challenge nonce a client signs (the server sends 22 characters).
pub const MAX_NONCE_BYTES: usize = 64;

/// The identity proof in a `register` (`"proof"` in its JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterProof {
    /// The client's identity key (base64url, 43 characters).
    pub key: String,
    /// The server's challenge for this connection, as received.
    pub nonce: String,
    /// The Ed25519 signature (base64url) of [`register_proof_bytes`].
    pub sig: String,
}

/// What a register proof signs. The username and nonce hold no newline (a validated name, a
/// base64url value) and the session is the last field, so no two registers sign the same
/// bytes; the prefix keeps a proof from ever passing as a seal, and a seal as a proof.
pub fn register_proof_bytes(username: &str, nonce: &str, session: &str) -> Vec<u8> {
    format!("peerchat register v1\n{username}\n{nonce}\n{session}").into_bytes()
}

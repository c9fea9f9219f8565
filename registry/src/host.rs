//! What the client knows of one registry host: the URL scheme chosen for it, its auth state and
//! its concurrency gate.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::Challenge;
use crate::gate::Gate;

pub(crate) struct HostState {
    /// `https://host[:port]` (or `http://` for plain HTTP).
    pub(crate) base: String,
    pub(crate) auth: Mutex<AuthState>,
    pub(crate) gate: Gate,
}

impl HostState {
    pub(crate) fn new(base: String) -> HostState {
        HostState {
            base,
            auth: Mutex::new(AuthState::default()),
            gate: Gate::new(),
        }
    }
}

/// A host's auth state: the challenge it answered with, and the tokens fetched per scope.
#[derive(Default)]
pub(crate) struct AuthState {
    pub(crate) challenge: Option<Challenge>,
    pub(crate) tokens: HashMap<String, String>,
}

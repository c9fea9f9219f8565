//! What the client knows of one registry host: the URL scheme chosen for it, its auth state, its
//! concurrency gate, and the repositories that showed they have no referrers API.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::auth::Challenge;
use crate::gate::Gate;

pub(crate) struct HostState {
    /// `https://host[:port]` (or `http://` for plain HTTP).
    pub(crate) base: String,
    pub(crate) auth: Mutex<AuthState>,
    pub(crate) gate: Gate,
    /// Repositories whose referrers API answered 404 (or 405, 501): asked once, then their
    /// referrers are read from the tag schema directly. Kept per repository, not per host: one
    /// host can serve repositories of several kinds (a proxy cache beside local ones).
    pub(crate) no_referrers_api: Mutex<HashSet<String>>,
}

impl HostState {
    pub(crate) fn new(base: String) -> HostState {
        HostState {
            base,
            auth: Mutex::new(AuthState::default()),
            gate: Gate::new(),
            no_referrers_api: Mutex::new(HashSet::new()),
        }
    }
}

/// A host's auth state: the challenge it answered with, and the tokens fetched per scope.
#[derive(Default)]
pub(crate) struct AuthState {
    pub(crate) challenge: Option<Challenge>,
    pub(crate) tokens: HashMap<String, String>,
}

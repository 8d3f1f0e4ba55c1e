//! The client side of a coordination-node session, as Kafka's `ZooKeeperClient` keeps it.
//!
//! It numbers requests, remembers why each was sent (a purpose `P` chosen by the owner), and
//! tells the owner when to ping. It does no I/O: `request` returns the message to send to
//! [`NodeId::Zk`].

use crate::protocol::{Message, ZkError, ZkReply, ZkRequest};
use crate::types::{CorrelationId, Instant, SessionId};
use std::collections::BTreeMap;

/// Session state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No session and no Connect in flight.
    Disconnected,
    /// A Connect is in flight.
    Connecting,
    Connected(SessionId),
}

/// One session with the coordination node.
#[derive(Debug, Clone)]
pub struct ZkClient<P> {
    pub state: SessionState,
    pub session_timeout_ms: u64,
    next_corr: u64,
    pending: BTreeMap<CorrelationId, P>,
    last_sent: Instant,
}

impl<P> ZkClient<P> {
    pub fn new(session_timeout_ms: u64) -> Self {
        ZkClient {
            state: SessionState::Disconnected,
            session_timeout_ms,
            next_corr: 1,
            pending: BTreeMap::new(),
            last_sent: Instant(0),
        }
    }

    /// The live session, if any.
    pub fn session(&self) -> Option<SessionId> {
        match self.state {
            SessionState::Connected(s) => Some(s),
            _ => None,
        }
    }

    /// Starts a new session: forgets every pending request and returns the Connect message.
    pub fn connect(&mut self, now: Instant, purpose: P) -> Message {
        self.pending.clear();
        self.state = SessionState::Connecting;
        let req = ZkRequest::Connect {
            session_timeout_ms: self.session_timeout_ms,
        };
        self.raw(now, SessionId(0), req, purpose)
    }

    /// A request on the live session (or on session 0 when there is none: the server answers
    /// `NoSession`, which the owner handles like an expiry).
    pub fn request(&mut self, now: Instant, req: ZkRequest, purpose: P) -> Message {
        let session = self.session().unwrap_or(SessionId(0));
        self.raw(now, session, req, purpose)
    }

    fn raw(&mut self, now: Instant, session: SessionId, req: ZkRequest, purpose: P) -> Message {
        let corr = CorrelationId(self.next_corr);
        self.next_corr += 1;
        self.pending.insert(corr, purpose);
        self.last_sent = now;
        Message::Zk { corr, session, req }
    }

    /// Matches a response to its purpose; `None` for a response to a forgotten request.
    /// A `Connected` reply moves the client to `Connected`.
    pub fn on_response(
        &mut self,
        corr: CorrelationId,
        result: &Result<ZkReply, ZkError>,
    ) -> Option<P> {
        let purpose = self.pending.remove(&corr)?;
        if let Ok(ZkReply::Connected {
            session,
            session_timeout_ms,
        }) = result
        {
            self.state = SessionState::Connected(*session);
            self.session_timeout_ms = *session_timeout_ms;
        }
        Some(purpose)
    }

    /// The session is gone: forget everything.
    pub fn expire(&mut self) {
        self.state = SessionState::Disconnected;
        self.pending.clear();
    }

    /// Whether a ping is due (nothing sent for a third of the session timeout).
    pub fn ping_due(&self, now: Instant) -> bool {
        self.session().is_some() && now.since(self.last_sent) >= self.session_timeout_ms / 3
    }
}

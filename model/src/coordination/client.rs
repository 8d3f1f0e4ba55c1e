//! The client side of a coordination-node session, as Kafka's `ZooKeeperClient` keeps it.
//!
//! It numbers requests, remembers why each was sent (a purpose `P` chosen by the owner), and
//! tells the owner when to ping. It does no I/O: `request` returns the message to send to
//! [`NodeId::Zk`](crate::types::NodeId::Zk).

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
    /// The `seq` of the last watch notification taken on this session (see [`Self::on_watch`]).
    watches_taken: u64,
    /// Requests on the live session not yet answered, with when they were last sent (see
    /// [`Self::retransmit_due`]).
    unanswered: BTreeMap<CorrelationId, (ZkRequest, Instant)>,
}

/// How long a request on a live session goes unanswered before the client sends it again
/// (see [`ZkClient::retransmit_due`]), in milliseconds.
pub const RETRANSMIT_AFTER_MS: u64 = 1000;

impl<P> ZkClient<P> {
    pub fn new(session_timeout_ms: u64) -> Self {
        ZkClient {
            state: SessionState::Disconnected,
            session_timeout_ms,
            next_corr: 1,
            pending: BTreeMap::new(),
            last_sent: Instant(0),
            watches_taken: 0,
            unanswered: BTreeMap::new(),
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
        self.watches_taken = 0;
        self.unanswered.clear();
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
        let msg = self.raw(now, session, req.clone(), purpose);
        if let Message::Zk { corr, .. } = &msg {
            if session.0 != 0 {
                self.unanswered.insert(*corr, (req, now));
            }
        }
        msg
    }

    /// The requests to send again: those on the live session unanswered for
    /// [`RETRANSMIT_AFTER_MS`], with their original correlation ids.
    ///
    /// ZooKeeper's client sends over one TCP connection; when it breaks (a restarted peer, a
    /// reset) the client reconnects to the same session and Kafka's `ZooKeeperClient` sends the
    /// requests that failed with CONNECTIONLOSS again (`retryRequestsUntilConnected`). Here a
    /// request lost with a broken connection is sent again under its own correlation id, and
    /// the server answers a copy of a request it already carried out from its cache of
    /// answers instead of applying it twice, so each request takes effect at most once.
    pub fn retransmit_due(&mut self, now: Instant) -> Vec<Message> {
        let Some(session) = self.session() else {
            return Vec::new();
        };
        let answered_below = self.answered_below();
        let watch_ack = self.watches_taken;
        let mut again = Vec::new();
        for (corr, (req, sent)) in self.unanswered.iter_mut() {
            if now.since(*sent) >= RETRANSMIT_AFTER_MS {
                *sent = now;
                again.push(Message::Zk {
                    corr: *corr,
                    session,
                    req: req.clone(),
                    watch_ack,
                    answered_below,
                });
            }
        }
        if !again.is_empty() {
            self.last_sent = now;
        }
        again
    }

    fn answered_below(&self) -> CorrelationId {
        self.unanswered
            .keys()
            .next()
            .copied()
            .unwrap_or(CorrelationId(self.next_corr))
    }

    fn raw(&mut self, now: Instant, session: SessionId, req: ZkRequest, purpose: P) -> Message {
        let corr = CorrelationId(self.next_corr);
        let answered_below = self.answered_below();
        self.next_corr += 1;
        self.pending.insert(corr, purpose);
        self.last_sent = now;
        Message::Zk {
            corr,
            session,
            req,
            watch_ack: self.watches_taken,
            answered_below,
        }
    }

    /// Whether a watch notification is to be acted on: it must be on the live session and
    /// the next in order (`seq` one past the last taken). A repeat (already taken) or one
    /// after a gap (an earlier one was lost and will be sent again, in order) is dropped.
    pub fn on_watch(&mut self, session: SessionId, seq: u64) -> bool {
        if self.session() != Some(session) || seq != self.watches_taken + 1 {
            return false;
        }
        self.watches_taken = seq;
        true
    }

    /// Matches a response to its purpose; `None` for a response to a forgotten request.
    /// A `Connected` reply moves the client to `Connected`.
    pub fn on_response(
        &mut self,
        corr: CorrelationId,
        result: &Result<ZkReply, ZkError>,
    ) -> Option<P> {
        self.unanswered.remove(&corr);
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
        self.watches_taken = 0;
        self.unanswered.clear();
    }

    /// Whether a ping is due (nothing sent for a third of the session timeout).
    pub fn ping_due(&self, now: Instant) -> bool {
        self.session().is_some() && now.since(self.last_sent) >= self.session_timeout_ms / 3
    }
}

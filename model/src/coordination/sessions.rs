//! Sessions: connecting (with the timeout clamped to ZooKeeper's bounds), every request and
//! ping refreshing the deadline, expiry by the periodic check or on a late request, and the
//! deletion of the session's ephemerals and watches when it ends.
//!
//! Mirrors ZooKeeper's `SessionTrackerImpl` and `ZooKeeperServer.processConnectRequest`.

use super::*;

impl ZkServer {
    pub(super) fn on_connect(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        session_timeout_ms: u64,
        out: &mut Effects<ZkTimer>,
    ) {
        let session = SessionId(self.next_session_id);
        self.next_session_id = self
            .next_session_id
            .checked_add(1)
            .expect("session ids exhausted");
        let timeout_ms = session_timeout_ms.clamp(SESSION_TIMEOUT_MIN_MS, SESSION_TIMEOUT_MAX_MS);
        let previous = self.sessions.insert(
            session,
            Session {
                owner: from,
                timeout_ms,
                deadline: now.plus_ms(timeout_ms),
                watch_seq: 0,
                unacked: BTreeMap::new(),
                answers: BTreeMap::new(),
                answered_below: CorrelationId(0),
            },
        );
        assert!(previous.is_none(), "session id {session} reused");
        // The counter must be durable before the id is visible, or a restart could reissue it.
        self.persist([], out);
        let reply = ZkReply::Connected {
            session,
            session_timeout_ms: timeout_ms,
        };
        out.send(
            from,
            Message::ZkResponse {
                corr,
                result: Ok(reply),
            },
        );
    }

    pub(super) fn on_session_check_timeout(&mut self, now: Instant, out: &mut Effects<ZkTimer>) {
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for session in expired {
            self.expire_session(session, out);
        }
        assert!(self.sessions.values().all(|s| s.deadline > now));
        out.timer(SESSION_CHECK_INTERVAL_MS, ZkTimer::SessionCheck);
    }

    /// Refreshes a live session's deadline, or says why the session cannot be used (expiring
    /// it first if its deadline has passed but the periodic check has not run yet).
    pub(super) fn touch_session(
        &mut self,
        now: Instant,
        session: SessionId,
        out: &mut Effects<ZkTimer>,
    ) -> Result<(), ZkError> {
        match self.sessions.get_mut(&session) {
            Some(s) if s.deadline > now => {
                s.deadline = now.plus_ms(s.timeout_ms);
                Ok(())
            }
            Some(_) => {
                self.expire_session(session, out);
                Err(ZkError::SessionExpired)
            }
            None if (SESSION_ID_FIRST..self.next_session_id).contains(&session.0) => {
                Err(ZkError::SessionExpired)
            }
            None => Err(ZkError::NoSession),
        }
    }

    pub(super) fn expire_session(&mut self, session: SessionId, out: &mut Effects<ZkTimer>) {
        let owner = self
            .sessions
            .get(&session)
            .expect("expiring a live session")
            .owner;
        let triggers = self.remove_session(session);
        self.commit(triggers, out);
        out.event(Event::ZkSessionExpired { session, owner });
        out.send(owner, Message::ZkSessionExpired { session });
    }

    /// Ends a session: forgets it and its watches, deletes its ephemerals. Returns the
    /// triggers of those deletions (the caller commits them).
    pub(super) fn remove_session(&mut self, session: SessionId) -> Vec<Trigger> {
        let removed = self.sessions.remove(&session);
        assert!(removed.is_some(), "removing unknown session {session}");
        self.unchecked.get_mut().all = true;
        for watches in [&mut self.data_watches, &mut self.child_watches] {
            watches.retain(|_, sessions| {
                sessions.remove(&session);
                !sessions.is_empty()
            });
        }
        let ephemerals: Vec<String> = self
            .tree
            .iter()
            .filter(|(_, z)| z.ephemeral_owner == Some(session))
            .map(|(path, _)| path.clone())
            .collect();
        let mut triggers = Vec::new();
        for path in ephemerals {
            // Ephemerals have no children, so an unconditional delete cannot fail.
            let result = apply_op(
                &mut self.tree,
                session,
                ZkOp::Delete {
                    path,
                    expected_version: None,
                },
                &mut triggers,
            );
            assert_eq!(result, Ok(ZkReply::Deleted));
        }
        assert!(self
            .tree
            .values()
            .all(|z| z.ephemeral_owner != Some(session)));
        triggers
    }
}

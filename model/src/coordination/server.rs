//! The coordination node's request handling: reads, conditional writes and multis applied to
//! the tree, one-shot watches and their notifications (resent until acknowledged), and the
//! server's invariants.
//!
//! Mirrors ZooKeeper's `FinalRequestProcessor` and `WatchManager`.

use super::*;

impl ZkServer {
    /// A fresh server: only the root, no sessions.
    pub fn new() -> ZkServer {
        let mut tree = BTreeMap::new();
        tree.insert(
            ROOT.to_string(),
            Znode {
                data: Vec::new(),
                version: ZkVersion(0),
                ephemeral_owner: None,
                cversion: 0,
            },
        );
        let zk = ZkServer {
            tree,
            sessions: BTreeMap::new(),
            next_session_id: SESSION_ID_FIRST,
            data_watches: BTreeMap::new(),
            child_watches: BTreeMap::new(),
            unchecked: Default::default(),
            last_txn: 0,
            last_snapshotted: 0,
        };
        zk.check_invariants();
        zk
    }

    // ---- read-only accessors (tests, end-of-run inspection) ----

    /// A znode's data and version.
    pub fn get(&self, path: &str) -> Option<(&[u8], ZkVersion)> {
        self.tree.get(path).map(|z| (z.data.as_slice(), z.version))
    }

    /// The whole znode (ephemeral owner, cversion), if it exists.
    pub fn znode(&self, path: &str) -> Option<&Znode> {
        self.tree.get(path)
    }

    /// A znode's child names (last path component), sorted; empty if it does not exist.
    pub fn children(&self, path: &str) -> Vec<String> {
        if self.tree.contains_key(path) {
            child_names(&self.tree, path)
        } else {
            Vec::new()
        }
    }

    /// Live sessions and their owners, by session id.
    pub fn sessions(&self) -> Vec<(SessionId, NodeId)> {
        self.sessions.iter().map(|(id, s)| (*id, s.owner)).collect()
    }

    // ---- handlers ----

    /// One request. `(corr, answered_below)`: its correlation id, and the id below which the
    /// client has every answer (see [`Session::answers`]).
    pub(super) fn on_zk(
        &mut self,
        now: Instant,
        from: NodeId,
        (corr, answered_below): (CorrelationId, CorrelationId),
        session: SessionId,
        req: ZkRequest,
        watch_ack: u64,
        out: &mut Effects<ZkTimer>,
    ) {
        if let ZkRequest::Connect { session_timeout_ms } = req {
            self.on_connect(now, from, corr, session_timeout_ms, out);
            return;
        }
        if let Err(error) = self.touch_session(now, session, out) {
            out.send(
                from,
                Message::ZkResponse {
                    corr,
                    result: Err(error),
                },
            );
            return;
        }
        self.resend_watches(session, watch_ack, out);
        if let Some(s) = self.sessions.get_mut(&session) {
            if answered_below > s.answered_below {
                s.answered_below = answered_below;
                s.answers = s.answers.split_off(&answered_below);
            }
            if corr < s.answered_below {
                // A late copy of a request whose answer the client already has.
                return;
            }
            if let Some(result) = s.answers.get(&corr) {
                // A copy of a request already carried out: answer it again, do not redo it.
                out.send(
                    from,
                    Message::ZkResponse {
                        corr,
                        result: result.clone(),
                    },
                );
                return;
            }
        }
        let mut triggers = Vec::new();
        let writes = data_writes(&req);
        let result = match req {
            ZkRequest::Connect { .. } => unreachable!("handled above"),
            ZkRequest::Ping => Ok(ZkReply::Pong),
            ZkRequest::Create {
                path,
                data,
                ephemeral,
            } => apply_op(
                &mut self.tree,
                session,
                ZkOp::Create {
                    path,
                    data,
                    ephemeral,
                },
                &mut triggers,
            ),
            ZkRequest::SetData {
                path,
                data,
                expected_version,
            } => apply_op(
                &mut self.tree,
                session,
                ZkOp::SetData {
                    path,
                    data,
                    expected_version,
                },
                &mut triggers,
            ),
            ZkRequest::Delete {
                path,
                expected_version,
            } => apply_op(
                &mut self.tree,
                session,
                ZkOp::Delete {
                    path,
                    expected_version,
                },
                &mut triggers,
            ),
            ZkRequest::GetData { path, watch } => self.get_data(session, path, watch),
            ZkRequest::GetChildren { path, watch } => self.get_children(session, path, watch),
            ZkRequest::Multi { ops } => self.multi(session, ops, &mut triggers),
            ZkRequest::Close => {
                triggers = self.remove_session(session);
                Ok(ZkReply::Closed)
            }
        };
        assert!(
            result.is_ok() || triggers.is_empty(),
            "a failed request changed the tree"
        );
        self.commit(triggers, out);
        if let Ok(reply) = &result {
            let writer = self.sessions.get(&session).map(|s| s.owner);
            observe_writes(&writes, reply, writer, out);
        }
        if let Some(s) = self.sessions.get_mut(&session) {
            s.answers.insert(corr, result.clone());
        }
        out.send(from, Message::ZkResponse { corr, result });
    }

    pub(super) fn get_data(
        &mut self,
        session: SessionId,
        path: String,
        watch: bool,
    ) -> Result<ZkReply, ZkError> {
        let result = match self.tree.get(&path) {
            Some(z) => Ok(ZkReply::Data {
                data: z.data.clone(),
                version: z.version,
            }),
            None => Err(ZkError::NoNode),
        };
        // On a missing znode this is an exists-watch; a malformed path could never fire.
        if watch && is_valid_path(&path) {
            self.unchecked.get_mut().paths.insert(path.clone());
            self.data_watches.entry(path).or_default().insert(session);
        }
        result
    }

    pub(super) fn get_children(
        &mut self,
        session: SessionId,
        path: String,
        watch: bool,
    ) -> Result<ZkReply, ZkError> {
        if !self.tree.contains_key(&path) {
            return Err(ZkError::NoNode);
        }
        let children = child_names(&self.tree, &path);
        if watch {
            self.unchecked.get_mut().paths.insert(path.clone());
            self.child_watches.entry(path).or_default().insert(session);
        }
        Ok(ZkReply::Children { children })
    }

    pub(super) fn multi(
        &mut self,
        session: SessionId,
        ops: Vec<ZkOp>,
        triggers: &mut Vec<Trigger>,
    ) -> Result<ZkReply, ZkError> {
        // All or nothing: each op is applied in place, after saving the znodes it may change
        // (its path, and its parent's child version); the first failure restores them, latest
        // first. A copy of the whole tree per multi would cost as much as the tree is large.
        let mut undo: Vec<(String, Option<Znode>)> = Vec::new();
        let mut scratch_triggers = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let (path, parent) = match &op {
                ZkOp::Check { .. } => (None, None),
                ZkOp::SetData { path, .. } => (Some(path.as_str()), None),
                ZkOp::Create { path, .. } | ZkOp::Delete { path, .. } => {
                    (Some(path.as_str()), parent_of(path))
                }
            };
            for p in [path, parent].into_iter().flatten() {
                undo.push((p.to_string(), self.tree.get(p).cloned()));
            }
            match apply_op(&mut self.tree, session, op, &mut scratch_triggers) {
                Ok(reply) => results.push(reply),
                Err(e) => {
                    for (p, znode) in undo.into_iter().rev() {
                        match znode {
                            Some(z) => self.tree.insert(p, z),
                            None => self.tree.remove(&p),
                        };
                    }
                    return Err(e);
                }
            }
        }
        triggers.extend(scratch_triggers);
        Ok(ZkReply::Multi { results })
    }

    /// Makes a change durable, then notifies the watches it fired. Every change to the tree
    /// records at least one trigger, so no triggers means nothing to write.
    pub(super) fn commit(&mut self, triggers: Vec<Trigger>, out: &mut Effects<ZkTimer>) {
        if triggers.is_empty() {
            return;
        }
        let unchecked = self.unchecked.get_mut();
        for (path, _) in &triggers {
            if !unchecked.paths.contains(path) {
                unchecked.paths.insert(path.clone());
            }
        }
        let changed: BTreeSet<&String> = triggers.iter().map(|(path, _)| path).collect();
        self.persist(changed, out);
        for (path, kind) in triggers {
            let mut sessions = BTreeSet::new();
            if matches!(
                kind,
                WatchKind::NodeCreated | WatchKind::NodeDataChanged | WatchKind::NodeDeleted
            ) {
                sessions.extend(self.data_watches.remove(&path).unwrap_or_default());
            }
            if matches!(
                kind,
                WatchKind::NodeChildrenChanged | WatchKind::NodeDeleted
            ) {
                sessions.extend(self.child_watches.remove(&path).unwrap_or_default());
            }
            for session in sessions {
                let s = self
                    .sessions
                    .get_mut(&session)
                    .expect("watches belong to live sessions");
                s.watch_seq += 1;
                let seq = s.watch_seq;
                s.unacked.insert(seq, (path.clone(), kind));
                out.send(
                    s.owner,
                    Message::ZkWatch {
                        session,
                        path: path.clone(),
                        kind,
                        seq,
                    },
                );
            }
        }
    }

    /// Forgets the notifications of `session` up to `watch_ack` and sends the rest again, in
    /// order, so that they reach the client before the answer to its request does.
    pub(super) fn resend_watches(
        &mut self,
        session: SessionId,
        watch_ack: u64,
        out: &mut Effects<ZkTimer>,
    ) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.unacked = s.unacked.split_off(&(watch_ack + 1));
        for (seq, (path, kind)) in &s.unacked {
            out.send(
                s.owner,
                Message::ZkWatch {
                    session,
                    path: path.clone(),
                    kind: *kind,
                    seq: *seq,
                },
            );
        }
    }

    /// The invariants after a handler: those of the whole tree after a session ended, else
    /// those of the znodes and watches that changed since the last check (a write can only
    /// break a rule where it wrote), and always the root's and the sessions' (few).
    pub(super) fn check_changed(&self) {
        let unchecked = std::mem::take(&mut *self.unchecked.borrow_mut());
        if unchecked.all {
            return self.check_invariants();
        }
        self.check_root_and_sessions();
        for path in &unchecked.paths {
            match self.tree.get(path) {
                Some(z) => self.check_znode(path, z),
                None => assert!(
                    !has_children(&self.tree, path),
                    "{path} was deleted but has children"
                ),
            }
            if let Some(sessions) = self.data_watches.get(path) {
                self.check_watch(path, sessions, "data");
            }
            if let Some(sessions) = self.child_watches.get(path) {
                assert!(
                    self.tree.contains_key(path),
                    "{path}: child watch on a missing znode"
                );
                self.check_watch(path, sessions, "child");
            }
        }
    }

    fn check_root_and_sessions(&self) {
        let root = self.tree.get(ROOT).expect("the root znode exists");
        assert!(root.ephemeral_owner.is_none(), "the root is persistent");
        assert!(self.next_session_id >= SESSION_ID_FIRST);
        for id in self.sessions.keys() {
            assert!(
                (SESSION_ID_FIRST..self.next_session_id).contains(&id.0),
                "session {id} was never issued"
            );
        }
    }

    /// One znode's rules: a well-formed path, versions, a persistent parent, a live owner.
    fn check_znode(&self, path: &str, z: &Znode) {
        assert!(is_valid_path(path), "malformed path {path:?} in the tree");
        assert!(
            z.version.0 >= 0 && z.cversion >= 0,
            "{path}: negative version"
        );
        if let Some(parent) = parent_of(path) {
            let p = self
                .tree
                .get(parent)
                .unwrap_or_else(|| panic!("{path}: parent {parent} missing"));
            assert!(
                p.ephemeral_owner.is_none(),
                "ephemeral {parent} has child {path}"
            );
        }
        if let Some(owner) = z.ephemeral_owner {
            assert!(
                self.sessions.contains_key(&owner),
                "{path}: owner session {owner} is not live"
            );
            assert!(
                !has_children(&self.tree, path),
                "ephemeral {path} has children"
            );
        }
    }

    fn check_watch(&self, path: &str, sessions: &BTreeSet<SessionId>, kind: &str) {
        assert!(!sessions.is_empty(), "{path}: empty {kind} watch set");
        assert!(
            sessions.iter().all(|s| self.sessions.contains_key(s)),
            "{path}: {kind} watch of a dead session"
        );
    }

    /// The tree's and the sessions' invariants, everywhere (at start, after recovery, and
    /// after a session ended).
    pub(super) fn check_invariants(&self) {
        self.check_root_and_sessions();
        for (path, z) in &self.tree {
            self.check_znode(path, z);
        }
        for (path, sessions) in &self.data_watches {
            self.check_watch(path, sessions, "data");
        }
        for (path, sessions) in &self.child_watches {
            assert!(
                self.tree.contains_key(path),
                "{path}: child watch on a missing znode"
            );
            self.check_watch(path, sessions, "child");
        }
    }
}

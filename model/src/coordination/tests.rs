use super::*;
use crate::effects::Effect;
use crate::types::BrokerId;
use proptest::prelude::*;
use snapshot::MIN_TXNS_PER_SNAPSHOT;

const B0: NodeId = NodeId::Broker(BrokerId(0));
const B1: NodeId = NodeId::Broker(BrokerId(1));
const TIMEOUT_MS: u64 = 6_000;

/// Drives a [`ZkServer`] by hand: a clock, a correlation counter, and the effects of the
/// last call.
struct Harness {
    zk: ZkServer,
    now: Instant,
    corr: u64,
    /// Per session, the last notification `seq` the harness's client took.
    watch_acks: BTreeMap<SessionId, u64>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(ZkServer::new())
    }

    fn with(mut zk: ZkServer) -> Harness {
        let mut out = Effects::new();
        zk.on_start(Instant(0), &mut out);
        assert_eq!(
            out.list,
            vec![Effect::SetTimer {
                after_ms: SESSION_CHECK_INTERVAL_MS,
                timer: ZkTimer::SessionCheck
            }]
        );
        Harness {
            zk,
            now: Instant(0),
            corr: 0,
            watch_acks: BTreeMap::new(),
        }
    }

    /// Sends one request; returns the response to `from` and every effect.
    fn call(
        &mut self,
        from: NodeId,
        session: SessionId,
        req: ZkRequest,
    ) -> (Result<ZkReply, ZkError>, Vec<Effect<ZkTimer>>) {
        self.corr += 1;
        let corr = CorrelationId(self.corr);
        let mut out = Effects::new();
        self.zk.on_message(
            self.now,
            from,
            Message::Zk {
                corr,
                session,
                req,
                watch_ack: self.watch_acks.get(&session).copied().unwrap_or(0),
                answered_below: corr,
            },
            &mut out,
        );
        // The client takes every notification it is sent (a lossless network).
        for e in &out.list {
            if let Effect::Send {
                msg: Message::ZkWatch { session, seq, .. },
                ..
            } = e
            {
                self.watch_acks.insert(*session, *seq);
            }
        }
        let responses: Vec<_> = out
            .list
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    to,
                    msg: Message::ZkResponse { corr: c, result },
                } => {
                    assert_eq!(
                        (*to, *c),
                        (from, corr),
                        "response to the requester, with its corr"
                    );
                    Some(result.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(responses.len(), 1, "exactly one response: {:?}", out.list);
        // The response is always the last effect: durable and notified first.
        assert!(matches!(
            out.list.last(),
            Some(Effect::Send {
                msg: Message::ZkResponse { .. },
                ..
            })
        ));
        (responses[0].clone(), out.list)
    }

    fn ok(&mut self, from: NodeId, session: SessionId, req: ZkRequest) -> ZkReply {
        let (result, _) = self.call(from, session, req.clone());
        result.unwrap_or_else(|e| panic!("{req:?} failed: {e:?}"))
    }

    fn err(&mut self, from: NodeId, session: SessionId, req: ZkRequest) -> ZkError {
        let (result, _) = self.call(from, session, req.clone());
        result.expect_err(&format!("{req:?} succeeded"))
    }

    fn connect(&mut self, from: NodeId) -> SessionId {
        match self.ok(
            from,
            SessionId(0),
            ZkRequest::Connect {
                session_timeout_ms: TIMEOUT_MS,
            },
        ) {
            ZkReply::Connected {
                session,
                session_timeout_ms,
            } => {
                assert_eq!(session_timeout_ms, TIMEOUT_MS);
                session
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Advances the clock and runs the session check as often as it would have run.
    fn advance(&mut self, ms: u64) -> Vec<Effect<ZkTimer>> {
        let mut all = Vec::new();
        let target = self.now.plus_ms(ms);
        while self.now < target {
            self.now = self
                .now
                .plus_ms(SESSION_CHECK_INTERVAL_MS.min(target.since(self.now)));
            let mut out = Effects::new();
            self.zk
                .on_timeout(self.now, ZkTimer::SessionCheck, &mut out);
            all.extend(out.list);
        }
        all
    }
}

fn create(path: &str, data: &[u8], ephemeral: bool) -> ZkRequest {
    ZkRequest::Create {
        path: path.into(),
        data: data.to_vec(),
        ephemeral,
    }
}
fn set(path: &str, data: &[u8], expected_version: Option<i32>) -> ZkRequest {
    ZkRequest::SetData {
        path: path.into(),
        data: data.to_vec(),
        expected_version: expected_version.map(ZkVersion),
    }
}
fn get(path: &str, watch: bool) -> ZkRequest {
    ZkRequest::GetData {
        path: path.into(),
        watch,
    }
}
fn delete(path: &str, expected_version: Option<i32>) -> ZkRequest {
    ZkRequest::Delete {
        path: path.into(),
        expected_version: expected_version.map(ZkVersion),
    }
}
fn watches(effects: &[Effect<ZkTimer>]) -> Vec<(NodeId, SessionId, String, WatchKind)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                msg:
                    Message::ZkWatch {
                        session,
                        path,
                        kind,
                        ..
                    },
            } => Some((*to, *session, path.clone(), *kind)),
            _ => None,
        })
        .collect()
}
fn writes(effects: &[Effect<ZkTimer>]) -> usize {
    effects.iter().filter(|e| matches!(e, Effect::Disk(DiskOp::WriteAtomic { file, .. }) if file.starts_with("zk/"))).count()
}
fn disk_files(effects: &[Effect<ZkTimer>]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    apply_disk(effects, &mut files);
    files
}
/// Carries out `effects`' file writes and deletions on `files` (the node's durable files).
fn apply_disk(effects: &[Effect<ZkTimer>], files: &mut BTreeMap<String, Vec<u8>>) {
    for e in effects {
        match e {
            Effect::Disk(DiskOp::WriteAtomic { file, data }) => {
                files.insert(file.clone(), data.clone());
            }
            Effect::Disk(DiskOp::Delete { file }) => {
                files.remove(file);
            }
            _ => {}
        }
    }
}

/// Connects a session as `B0` and returns it with the files its connection wrote.
fn connect_recording(h: &mut Harness) -> (SessionId, BTreeMap<String, Vec<u8>>) {
    let (result, effects) = h.call(
        B0,
        SessionId(0),
        ZkRequest::Connect {
            session_timeout_ms: TIMEOUT_MS,
        },
    );
    let Ok(ZkReply::Connected { session, .. }) = result else {
        panic!("{result:?}")
    };
    (session, disk_files(&effects))
}

#[test]
fn create_get_set_with_versions() {
    let mut h = Harness::new();
    let s = h.connect(B0);
    assert_eq!(
        h.ok(B0, s, create("/a", b"x", false)),
        ZkReply::Created { path: "/a".into() }
    );
    assert_eq!(
        h.ok(B0, s, get("/a", false)),
        ZkReply::Data {
            data: b"x".to_vec(),
            version: ZkVersion(0)
        }
    );
    assert_eq!(
        h.ok(B0, s, set("/a", b"y", Some(0))),
        ZkReply::Stat {
            version: ZkVersion(1)
        }
    );
    assert_eq!(h.err(B0, s, set("/a", b"z", Some(0))), ZkError::BadVersion);
    assert_eq!(
        h.zk.get("/a"),
        Some((&b"y"[..], ZkVersion(1))),
        "a failed conditional write changes nothing"
    );
    assert_eq!(
        h.ok(B0, s, set("/a", b"z", None)),
        ZkReply::Stat {
            version: ZkVersion(2)
        }
    );
    assert_eq!(
        h.ok(B0, s, get("/a", false)),
        ZkReply::Data {
            data: b"z".to_vec(),
            version: ZkVersion(2)
        }
    );
    assert_eq!(h.err(B0, s, delete("/a", Some(1))), ZkError::BadVersion);
    assert_eq!(h.ok(B0, s, delete("/a", Some(2))), ZkReply::Deleted);
    assert_eq!(h.zk.get("/a"), None);
}

#[test]
fn structural_errors() {
    let mut h = Harness::new();
    let s = h.connect(B0);
    assert_eq!(
        h.err(B0, s, create("/brokers/ids", b"", false)),
        ZkError::NoNode,
        "parent missing"
    );
    h.ok(B0, s, create("/brokers", b"", false));
    h.ok(B0, s, create("/brokers/ids", b"", false));
    assert_eq!(
        h.err(B0, s, create("/brokers", b"", false)),
        ZkError::NodeExists
    );
    assert_eq!(h.err(B0, s, create("/", b"", false)), ZkError::NodeExists);
    assert_eq!(h.err(B0, s, delete("/brokers", None)), ZkError::NotEmpty);
    assert_eq!(
        h.err(B0, s, delete("/", None)),
        ZkError::NotEmpty,
        "the root cannot be deleted"
    );
    assert_eq!(h.err(B0, s, delete("/nope", None)), ZkError::NoNode);
    assert_eq!(h.err(B0, s, set("/nope", b"", None)), ZkError::NoNode);
    assert_eq!(h.err(B0, s, get("/nope", false)), ZkError::NoNode);
    assert_eq!(
        h.err(
            B0,
            s,
            ZkRequest::GetChildren {
                path: "/nope".into(),
                watch: true
            }
        ),
        ZkError::NoNode
    );
    for bad in ["", "a", "/a/", "//a", "/a/./b", "/brokers/../x"] {
        assert_eq!(
            h.err(B0, s, create(bad, b"", false)),
            ZkError::NoNode,
            "{bad:?}"
        );
    }
    // Ephemerals cannot have children.
    h.ok(B0, s, create("/e", b"", true));
    assert_eq!(
        h.err(B0, s, create("/e/child", b"", false)),
        ZkError::NoNode
    );
    // Children are the last path components, sorted; grandchildren and look-alike
    // siblings (`/brokers-x` sorts between `/brokers` and `/brokers/`) are excluded.
    h.ok(B0, s, create("/brokers-x", b"", false));
    for id in ["2", "10", "0"] {
        h.ok(B0, s, create(&format!("/brokers/ids/{id}"), b"", false));
    }
    let children = |v: &[&str]| ZkReply::Children {
        children: v.iter().map(|c| c.to_string()).collect(),
    };
    assert_eq!(
        h.ok(
            B0,
            s,
            ZkRequest::GetChildren {
                path: "/brokers/ids".into(),
                watch: false
            }
        ),
        children(&["0", "10", "2"])
    );
    assert_eq!(
        h.ok(
            B0,
            s,
            ZkRequest::GetChildren {
                path: "/brokers".into(),
                watch: false
            }
        ),
        children(&["ids"])
    );
    assert_eq!(
        h.ok(
            B0,
            s,
            ZkRequest::GetChildren {
                path: "/".into(),
                watch: false
            }
        ),
        children(&["brokers", "brokers-x", "e"])
    );
    assert_eq!(h.zk.children("/brokers/ids"), vec!["0", "10", "2"]);
    assert_eq!(h.zk.znode("/brokers/ids").map(|z| z.cversion), Some(3));
}

/// A committed `/controller_epoch` write is recorded where it commits, with the writer's
/// broker, in the order the node stores them; a refused conditional write is not.
#[test]
fn controller_epoch_writes_are_recorded_when_they_commit() {
    let mut h = Harness::new();
    let s0 = h.connect(B0);
    let s1 = h.connect(B1);
    let epochs = |effects: &[Effect<ZkTimer>]| -> Vec<Event> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Event(ev @ Event::ControllerEpochIncremented { .. }) => Some(ev.clone()),
                _ => None,
            })
            .collect()
    };
    let (_, effects) = h.call(B0, s0, create("/controller_epoch", b"1", false));
    assert_eq!(
        epochs(&effects),
        [Event::ControllerEpochIncremented {
            broker: BrokerId(0),
            controller_epoch: crate::types::ControllerEpoch(1),
        }]
    );
    let (_, effects) = h.call(B1, s1, set("/controller_epoch", b"2", Some(0)));
    assert_eq!(
        epochs(&effects),
        [Event::ControllerEpochIncremented {
            broker: BrokerId(1),
            controller_epoch: crate::types::ControllerEpoch(2),
        }]
    );
    // A stale conditional write (version 0 again) fails and records nothing.
    let (result, effects) = h.call(B0, s0, set("/controller_epoch", b"2", Some(0)));
    assert!(result.is_err());
    assert!(epochs(&effects).is_empty());
}

#[test]
fn connect_clamps_timeout_and_issues_increasing_ids() {
    let mut h = Harness::new();
    let mut seen = Vec::new();
    for (asked_ms, granted_ms) in [
        (1, SESSION_TIMEOUT_MIN_MS),
        (18_000, 18_000),
        (u64::MAX, SESSION_TIMEOUT_MAX_MS),
    ] {
        let (result, effects) = h.call(
            B0,
            SessionId(0),
            ZkRequest::Connect {
                session_timeout_ms: asked_ms,
            },
        );
        assert_eq!(
            writes(&effects),
            1,
            "the counter is durable before the id is visible"
        );
        match result {
            Ok(ZkReply::Connected {
                session,
                session_timeout_ms,
            }) => {
                assert_eq!(session_timeout_ms, granted_ms);
                seen.push(session);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, vec![SessionId(1), SessionId(2), SessionId(3)]);
    assert_eq!(
        h.zk.sessions(),
        vec![(SessionId(1), B0), (SessionId(2), B0), (SessionId(3), B0)]
    );
    assert_eq!(
        h.err(B0, SessionId(99), ZkRequest::Ping),
        ZkError::NoSession
    );
    assert_eq!(h.err(B0, SessionId(0), ZkRequest::Ping), ZkError::NoSession);
}

#[test]
fn ephemeral_deleted_on_session_expiry_fires_watch_to_other_owner() {
    let mut h = Harness::new();
    let s0 = h.connect(B0);
    let s1 = h.connect(B1);
    h.ok(B0, s0, create("/controller", b"0", true));
    h.ok(B1, s1, get("/controller", true));
    // B1 keeps its session alive; B0 goes silent.
    let mut effects = Vec::new();
    for _ in 0..4 {
        effects.extend(h.advance(TIMEOUT_MS / 3));
        assert_eq!(h.ok(B1, s1, ZkRequest::Ping), ZkReply::Pong);
    }
    assert_eq!(h.zk.get("/controller"), None);
    assert_eq!(h.zk.sessions(), vec![(s1, B1)]);
    assert_eq!(
        watches(&effects),
        vec![(B1, s1, "/controller".to_string(), WatchKind::NodeDeleted)]
    );
    assert!(effects.contains(&Effect::Event(Event::ZkSessionExpired {
        session: s0,
        owner: B0
    })));
    assert!(effects.contains(&Effect::Send {
        to: B0,
        msg: Message::ZkSessionExpired { session: s0 }
    }));
    assert_eq!(h.err(B0, s0, ZkRequest::Ping), ZkError::SessionExpired);
    // B1 can now win the election.
    h.ok(B1, s1, create("/controller", b"1", true));
    assert_eq!(
        h.zk.znode("/controller").and_then(|z| z.ephemeral_owner),
        Some(s1)
    );
}

#[test]
fn request_after_deadline_expires_before_the_periodic_check() {
    let mut h = Harness::new();
    let s = h.connect(B0);
    h.ok(B0, s, create("/e", b"", true));
    h.now = h.now.plus_ms(TIMEOUT_MS); // no timer ran
    let (result, effects) = h.call(B0, s, ZkRequest::Ping);
    assert_eq!(result, Err(ZkError::SessionExpired));
    assert!(effects.contains(&Effect::Event(Event::ZkSessionExpired {
        session: s,
        owner: B0
    })));
    assert_eq!(h.zk.get("/e"), None);
    assert!(h.zk.sessions().is_empty());
}

#[test]
fn pings_keep_a_session_alive() {
    let mut h = Harness::new();
    let s = h.connect(B0);
    h.ok(B0, s, create("/brokers", b"", false));
    h.ok(B0, s, create("/brokers/0", b"", true));
    for _ in 0..20 {
        let effects = h.advance(TIMEOUT_MS - SESSION_CHECK_INTERVAL_MS);
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Event(_))),
            "{effects:?}"
        );
        assert_eq!(h.ok(B0, s, ZkRequest::Ping), ZkReply::Pong);
    }
    assert_eq!(h.zk.sessions(), vec![(s, B0)]);
    assert!(h.zk.get("/brokers/0").is_some());
    // And the forbidden case: silence for a whole timeout expires it.
    h.advance(TIMEOUT_MS);
    assert!(h.zk.sessions().is_empty());
    assert_eq!(h.zk.get("/brokers/0"), None);
    assert!(
        h.zk.get("/brokers").is_some(),
        "persistent znodes outlive sessions"
    );
}

#[test]
fn watches_are_one_shot() {
    let mut h = Harness::new();
    let s0 = h.connect(B0);
    let s1 = h.connect(B1);
    h.ok(B0, s0, create("/a", b"", false));
    h.ok(B1, s1, get("/a", true));
    h.ok(B1, s1, get("/a", true)); // setting it twice still fires once
    let (_, effects) = h.call(B0, s0, set("/a", b"1", None));
    assert_eq!(
        watches(&effects),
        vec![(B1, s1, "/a".to_string(), WatchKind::NodeDataChanged)]
    );
    let (_, effects) = h.call(B0, s0, set("/a", b"2", None));
    assert!(watches(&effects).is_empty(), "a fired watch is gone");
    // Re-armed, it fires again; a delete notifies the data watcher once.
    h.ok(B1, s1, get("/a", true));
    h.ok(
        B1,
        s1,
        ZkRequest::GetChildren {
            path: "/a".into(),
            watch: true,
        },
    );
    let (_, effects) = h.call(B0, s0, delete("/a", None));
    assert_eq!(
        watches(&effects),
        vec![(B1, s1, "/a".to_string(), WatchKind::NodeDeleted)]
    );
}

/// Regression (`jepsen-2013-isr-shrink-fixed` seed 161): the controller was cut off from
/// the coordination node for 350 ms while a broker registered; the child-watch
/// notification on `/brokers/ids` was dropped, the controller never read the broker list
/// again, and its partitions stayed offline to the end. A notification is now resent
/// until the client acknowledges it, as ZooKeeper's connection and `setWatches` ensure.
#[test]
fn a_lost_watch_notification_is_resent_until_acknowledged() {
    let mut h = Harness::new();
    let s0 = h.connect(B0);
    let s1 = h.connect(B1);
    h.ok(B0, s0, create("/a", b"", false));
    h.ok(B1, s1, get("/a", true));
    let (_, effects) = h.call(B0, s0, set("/a", b"1", None));
    assert_eq!(watches(&effects).len(), 1);
    // The notification (seq 1) is lost: B1's next request still acknowledges 0.
    h.watch_acks.insert(s1, 0);
    let (_, effects) = h.call(B1, s1, ZkRequest::Ping);
    let resent: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                msg: Message::ZkWatch { path, seq, .. },
            } => Some((*to, path.clone(), *seq)),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec![(B1, "/a".to_string(), 1)]);
    // Sent before the answer, so the client sees the change before what follows it.
    let first_response = effects.iter().position(|e| {
        matches!(
            e,
            Effect::Send {
                msg: Message::ZkResponse { .. },
                ..
            }
        )
    });
    let first_watch = effects.iter().position(|e| {
        matches!(
            e,
            Effect::Send {
                msg: Message::ZkWatch { .. },
                ..
            }
        )
    });
    assert!(first_watch < first_response);
    // Acknowledged (the harness took it), it is not sent again.
    let (_, effects) = h.call(B1, s1, ZkRequest::Ping);
    assert!(watches(&effects).is_empty());
}

/// The client side: notifications are taken once each, strictly in order.
#[test]
fn the_client_takes_watch_notifications_once_and_in_order() {
    let mut c: crate::zk_client::ZkClient<()> = crate::zk_client::ZkClient::new(18000);
    c.connect(Instant(0), ());
    let connected = Ok(ZkReply::Connected {
        session: SessionId(7),
        session_timeout_ms: 18000,
    });
    c.on_response(CorrelationId(1), &connected);
    assert!(!c.on_watch(SessionId(6), 1), "another session's");
    assert!(!c.on_watch(SessionId(7), 2), "after a gap: seq 1 was lost");
    assert!(c.on_watch(SessionId(7), 1));
    assert!(!c.on_watch(SessionId(7), 1), "a repeat");
    assert!(c.on_watch(SessionId(7), 2));
    let Message::Zk { watch_ack, .. } = c.request(Instant(1), ZkRequest::Ping, ()) else {
        panic!("a request");
    };
    assert_eq!(watch_ack, 2);
}

#[test]
fn exists_and_child_watches() {
    let mut h = Harness::new();
    let s0 = h.connect(B0);
    let s1 = h.connect(B1);
    h.ok(B0, s0, create("/brokers", b"", false));
    assert_eq!(h.err(B1, s1, get("/brokers/0", true)), ZkError::NoNode);
    h.ok(
        B1,
        s1,
        ZkRequest::GetChildren {
            path: "/brokers".into(),
            watch: true,
        },
    );
    let (_, effects) = h.call(B0, s0, create("/brokers/0", b"", true));
    assert_eq!(
        watches(&effects),
        vec![
            (B1, s1, "/brokers/0".to_string(), WatchKind::NodeCreated),
            (
                B1,
                s1,
                "/brokers".to_string(),
                WatchKind::NodeChildrenChanged
            ),
        ]
    );
    h.ok(
        B1,
        s1,
        ZkRequest::GetChildren {
            path: "/brokers".into(),
            watch: true,
        },
    );
    let (result, effects) = h.call(B0, s0, ZkRequest::Close);
    assert_eq!(result, Ok(ZkReply::Closed));
    assert_eq!(writes(&effects), 1);
    assert_eq!(
        watches(&effects),
        vec![(
            B1,
            s1,
            "/brokers".to_string(),
            WatchKind::NodeChildrenChanged
        )]
    );
    assert_eq!(h.zk.children("/brokers"), Vec::<String>::new());
    assert_eq!(h.err(B0, s0, ZkRequest::Ping), ZkError::SessionExpired);
    // A dead session's watches are dropped with it.
    let s2 = h.connect(B0);
    assert_eq!(h.err(B0, s2, get("/x", true)), ZkError::NoNode);
    h.ok(B0, s2, ZkRequest::Close);
    let (_, effects) = h.call(B1, s1, create("/x", b"", false));
    assert!(watches(&effects).is_empty());
}

#[test]
fn multi_is_all_or_nothing() {
    let mut h = Harness::new();
    let s0 = h.connect(B0);
    let s1 = h.connect(B1);
    h.ok(B0, s0, create("/controller_epoch", b"1", false));
    h.ok(B0, s0, set("/controller_epoch", b"2", Some(0)));
    h.ok(B1, s1, get("/controller_epoch", true));
    assert_eq!(h.err(B1, s1, get("/controller", true)), ZkError::NoNode);
    let before = h.zk.clone();
    // A zombie controller fenced by the epoch's zkVersion (KAFKA-6082).
    let ops = vec![
        ZkOp::Create {
            path: "/controller".into(),
            data: b"0".to_vec(),
            ephemeral: true,
        },
        ZkOp::Check {
            path: "/controller_epoch".into(),
            version: ZkVersion(0),
        },
        ZkOp::SetData {
            path: "/controller_epoch".into(),
            data: b"3".to_vec(),
            expected_version: None,
        },
    ];
    let (result, effects) = h.call(B0, s0, ZkRequest::Multi { ops });
    assert_eq!(result, Err(ZkError::BadVersion));
    assert_eq!(writes(&effects), 0);
    assert!(watches(&effects).is_empty());
    assert_eq!(h.zk.tree, before.tree, "nothing applied");
    assert_eq!(h.zk.data_watches, before.data_watches, "no watch fired");
    // The first error wins.
    let ops = vec![
        ZkOp::Delete {
            path: "/nope".into(),
            expected_version: None,
        },
        ZkOp::Check {
            path: "/controller_epoch".into(),
            version: ZkVersion(0),
        },
    ];
    assert_eq!(h.err(B0, s0, ZkRequest::Multi { ops }), ZkError::NoNode);
    // The right version: everything applies, each watch fires once.
    let ops = vec![
        ZkOp::Create {
            path: "/controller".into(),
            data: b"0".to_vec(),
            ephemeral: true,
        },
        ZkOp::Check {
            path: "/controller_epoch".into(),
            version: ZkVersion(1),
        },
        ZkOp::SetData {
            path: "/controller_epoch".into(),
            data: b"3".to_vec(),
            expected_version: Some(ZkVersion(1)),
        },
        ZkOp::SetData {
            path: "/controller_epoch".into(),
            data: b"4".to_vec(),
            expected_version: Some(ZkVersion(2)),
        },
    ];
    let (result, effects) = h.call(B0, s0, ZkRequest::Multi { ops });
    assert_eq!(
        result,
        Ok(ZkReply::Multi {
            results: vec![
                ZkReply::Created {
                    path: "/controller".into()
                },
                ZkReply::Stat {
                    version: ZkVersion(1)
                },
                ZkReply::Stat {
                    version: ZkVersion(2)
                },
                ZkReply::Stat {
                    version: ZkVersion(3)
                },
            ]
        })
    );
    assert_eq!(writes(&effects), 1, "one durable write for the whole multi");
    assert_eq!(
        watches(&effects),
        vec![
            (B1, s1, "/controller".to_string(), WatchKind::NodeCreated),
            (
                B1,
                s1,
                "/controller_epoch".to_string(),
                WatchKind::NodeDataChanged
            ),
        ]
    );
    assert_eq!(
        h.zk.get("/controller_epoch"),
        Some((&b"4"[..], ZkVersion(3)))
    );
}

#[test]
fn responses_and_watches_follow_the_durable_write() {
    let mut h = Harness::new();
    let s0 = h.connect(B0);
    let s1 = h.connect(B1);
    assert_eq!(h.err(B1, s1, get("/a", true)), ZkError::NoNode);
    let (_, effects) = h.call(B0, s0, create("/a", b"", false));
    let write_at = effects
        .iter()
        .position(|e| matches!(e, Effect::Disk(DiskOp::WriteAtomic { .. })))
        .expect("a write");
    let first_send = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }))
        .expect("a send");
    assert!(write_at < first_send, "{effects:?}");
    assert_eq!(effects.len(), 3, "write, watch, response: {effects:?}");
    // Reads and failed writes write nothing.
    let (_, effects) = h.call(B0, s0, get("/a", false));
    assert_eq!(writes(&effects), 0);
    let (_, effects) = h.call(B0, s0, create("/a", b"", false));
    assert_eq!(writes(&effects), 0);
}

#[test]
fn recover_restores_persistent_znodes_not_sessions_or_ephemerals() {
    let mut h = Harness::new();
    let (s0, mut files) = connect_recording(&mut h);
    for req in [
        create("/brokers", b"", false),
        create("/brokers/ids", b"", false),
        create("/brokers/ids/0", b"e", true),
    ] {
        let (result, effects) = h.call(B0, s0, req);
        assert!(result.is_ok());
        files.extend(disk_files(&effects));
    }
    let (_, effects) = h.call(B0, s0, set("/brokers", b"v", None));
    files.extend(disk_files(&effects));
    assert!(
        files.keys().all(|f| f.starts_with(TXN_FILE_PREFIX)),
        "a few changes are transactions, not yet a snapshot: {:?}",
        files.keys()
    );

    let mut h = Harness::with(ZkServer::recover(&files));
    assert_eq!(h.zk.get("/brokers"), Some((&b"v"[..], ZkVersion(1))));
    assert_eq!(h.zk.children("/brokers"), vec!["ids"]);
    assert_eq!(
        h.zk.get("/brokers/ids/0"),
        None,
        "ephemerals do not survive a restart"
    );
    assert!(h.zk.sessions().is_empty());
    assert_eq!(
        h.err(B0, s0, ZkRequest::Ping),
        ZkError::SessionExpired,
        "an old session is expired, not unknown"
    );
    let s1 = h.connect(B0);
    assert!(s1 > s0, "session ids are never reused");

    assert!(
        ZkServer::recover(&BTreeMap::new()).get("/").is_some(),
        "no snapshot: a fresh server"
    );
    let garbage = BTreeMap::from([(SNAPSHOT_FILE.to_string(), b"{not json".to_vec())]);
    assert!(ZkServer::try_recover(&garbage).is_err());
    let orphan = br#"{"next_session_id":1,"znodes":{"/":{"data":[],"version":0,"cversion":0},"/a/b":{"data":[],"version":0,"cversion":0}}}"#;
    let orphan = BTreeMap::from([(SNAPSHOT_FILE.to_string(), orphan.to_vec())]);
    assert!(ZkServer::try_recover(&orphan)
        .unwrap_err()
        .contains("no parent"));
}

#[test]
fn transactions_are_folded_into_a_snapshot_and_recovery_replays_the_rest_in_order() {
    let mut h = Harness::new();
    let (s0, mut files) = connect_recording(&mut h);
    let (_, effects) = h.call(B0, s0, create("/a", b"", false));
    apply_disk(&effects, &mut files);
    for i in 0..150u32 {
        let (result, effects) = h.call(B0, s0, set("/a", &i.to_be_bytes(), None));
        assert!(result.is_ok());
        apply_disk(&effects, &mut files);
    }
    assert!(files.contains_key(SNAPSHOT_FILE), "a snapshot was taken");
    let txns = files
        .keys()
        .filter(|f| f.starts_with(TXN_FILE_PREFIX))
        .count();
    assert!(
        txns <= MIN_TXNS_PER_SNAPSHOT as usize,
        "the transactions a snapshot covers are deleted: {txns} left"
    );
    let recovered = ZkServer::recover(&files);
    assert_eq!(
        recovered.get("/a"),
        Some((&149u32.to_be_bytes()[..], ZkVersion(150)))
    );
    assert_eq!(recovered.next_session_id, h.zk.next_session_id);

    // A transaction file left behind by a crash before its deletion is skipped; a missing one
    // in the middle is refused.
    let mut stale = files.clone();
    stale.insert(
        format!("{TXN_FILE_PREFIX}{:020}", 1),
        b"{\"next_session_id\":1,\"changes\":{\"/a\":null}}".to_vec(),
    );
    assert_eq!(ZkServer::recover(&stale).get("/a"), recovered.get("/a"));
    let mut gap = files.clone();
    let first = gap
        .keys()
        .find(|f| f.starts_with(TXN_FILE_PREFIX))
        .cloned()
        .expect("transactions after the snapshot");
    gap.remove(&first);
    assert!(gap.keys().any(|f| f.starts_with(TXN_FILE_PREFIX)));
    assert!(ZkServer::try_recover(&gap)
        .unwrap_err()
        .contains("is missing"));
}

#[test]
fn non_requests_are_ignored() {
    let mut h = Harness::new();
    let mut out = Effects::new();
    h.zk.on_message(
        h.now,
        B0,
        Message::ZkSessionExpired {
            session: SessionId(1),
        },
        &mut out,
    );
    assert!(out.is_empty());
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z", "/"])
        .prop_map(String::from)
}

fn arb_op() -> impl Strategy<Value = ZkOp> {
    let version = prop::option::of((0..3i32).prop_map(ZkVersion));
    prop_oneof![
        (arb_path(), (0..3i32).prop_map(ZkVersion))
            .prop_map(|(path, version)| ZkOp::Check { path, version }),
        (arb_path(), any::<bool>()).prop_map(|(path, ephemeral)| ZkOp::Create {
            path,
            data: vec![1],
            ephemeral
        }),
        (arb_path(), version.clone()).prop_map(|(path, expected_version)| ZkOp::SetData {
            path,
            data: vec![2],
            expected_version
        }),
        (arb_path(), version).prop_map(|(path, expected_version)| ZkOp::Delete {
            path,
            expected_version
        }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Request(usize, ZkRequest),
    Advance(u64),
    Restart,
}

fn arb_step() -> impl Strategy<Value = Step> {
    let req = prop_oneof![
        Just(ZkRequest::Connect {
            session_timeout_ms: TIMEOUT_MS
        }),
        Just(ZkRequest::Ping),
        Just(ZkRequest::Close),
        arb_op().prop_map(|op| match op {
            ZkOp::Check { path, .. } => ZkRequest::GetData { path, watch: true },
            ZkOp::Create {
                path,
                data,
                ephemeral,
            } => ZkRequest::Create {
                path,
                data,
                ephemeral
            },
            ZkOp::SetData {
                path,
                data,
                expected_version,
            } => ZkRequest::SetData {
                path,
                data,
                expected_version
            },
            ZkOp::Delete {
                path,
                expected_version,
            } => ZkRequest::Delete {
                path,
                expected_version
            },
        }),
        arb_path().prop_map(|path| ZkRequest::GetChildren { path, watch: true }),
        prop::collection::vec(arb_op(), 0..4).prop_map(|ops| ZkRequest::Multi { ops }),
    ];
    prop_oneof![
        8 => (0..3usize, req).prop_map(|(client, req)| Step::Request(client, req)),
        2 => (0..4_000u64).prop_map(Step::Advance),
        1 => Just(Step::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random traffic from three clients with restarts: the handlers' own invariant checks
    /// must hold, a failed request must change nothing, and recovery must reproduce exactly
    /// the persistent part of the tree.
    #[test]
    fn random_traffic_keeps_invariants(steps in prop::collection::vec(arb_step(), 1..160)) {
        let mut h = Harness::new();
        let mut files = BTreeMap::new();
        let mut session_of = [SessionId(0); 3];
        for (client, session) in session_of.iter_mut().enumerate() {
            let from = NodeId::Broker(BrokerId(client as i32));
            let (result, effects) = h.call(from, SessionId(0), ZkRequest::Connect { session_timeout_ms: TIMEOUT_MS });
            files.extend(disk_files(&effects));
            let Ok(ZkReply::Connected { session: id, .. }) = result else { panic!("{result:?}") };
            *session = id;
        }
        for step in steps {
            match step {
                Step::Request(client, req) => {
                    let from = NodeId::Broker(BrokerId(client as i32));
                    let before = h.zk.tree.clone();
                    let (result, effects) = h.call(from, session_of[client], req);
                    files.extend(disk_files(&effects));
                    match result {
                        Ok(ZkReply::Connected { session, .. }) => session_of[client] = session,
                        Ok(_) => {}
                        Err(ZkError::SessionExpired) => {}
                        Err(_) => prop_assert_eq!(&h.zk.tree, &before),
                    }
                }
                Step::Advance(ms) => files.extend(disk_files(&h.advance(ms))),
                Step::Restart => {
                    let recovered = ZkServer::recover(&files);
                    let persistent: BTreeMap<_, _> =
                        h.zk.tree.iter().filter(|(_, z)| z.ephemeral_owner.is_none()).map(|(p, z)| (p.clone(), z.clone())).collect();
                    prop_assert_eq!(&recovered.tree, &persistent);
                    prop_assert_eq!(recovered.next_session_id, h.zk.next_session_id);
                    h = Harness::with(recovered);
                }
            }
        }
    }
}

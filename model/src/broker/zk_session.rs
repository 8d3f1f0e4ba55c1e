//! The broker's coordination-node (ZooKeeper) session: connecting, keeping the session alive,
//! losing it, registering `/brokers/ids/N`, and the `/controller` election, as Kafka's
//! `KafkaZkClient` / `ZooKeeperClient` and the election half of `KafkaController.scala`
//! (`elect`, `onControllerFailover`) do. A won election hands over to the hosted controller
//! (`controller_host.rs`).

use super::{Broker, BrokerTimer};
use crate::controller::ControllerZkOp;
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::types::*;
use crate::zk_client::SessionState;

/// Why a coordination-node request was sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ZkPurpose {
    Connect,
    Ping,
    /// Create a persistent path if missing (NodeExists is fine).
    EnsurePath,
    /// Create our ephemeral `/brokers/ids/N`.
    Register,
    /// Read `/controller` (with a watch).
    ControllerRead,
    /// Try to create `/controller`.
    ControllerCreate,
    /// Read `/controller_epoch` after winning `/controller`.
    EpochRead,
    /// Conditionally write the incremented `/controller_epoch`.
    EpochWrite {
        epoch: ControllerEpoch,
    },
    /// Create `/controller_epoch` (first controller ever).
    EpochCreate,
    /// Work of the active controller.
    Controller(ControllerZkOp),
}

impl Broker {
    pub(super) fn zk_send(
        &mut self,
        now: Instant,
        req: ZkRequest,
        purpose: ZkPurpose,
        out: &mut Effects<BrokerTimer>,
    ) {
        let msg = self.zk.request(now, req, purpose);
        out.send(NodeId::Zk, msg);
    }

    pub(super) fn zk_connect(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let msg = self.zk.connect(now, ZkPurpose::Connect);
        out.send(NodeId::Zk, msg);
    }

    pub(super) fn on_session_lost(
        &mut self,
        now: Instant,
        reason: &str,
        out: &mut Effects<BrokerTimer>,
    ) {
        self.zk.expire();
        self.registered = false;
        // Without controller-epoch fencing (the legacy mode), a controller does not step down
        // when its session goes: it resigns only once it sees `/controller` owned by another
        // broker after re-registering (as ZkClient-era controllers resigned from their
        // new-session handler), and until then acts, and sends, on its stale view.
        if self.controller.is_active() && self.config.controller_epoch_fencing {
            self.controller.resign(reason, out);
        }
        self.zk_connect(now, out);
    }

    /// With controller-epoch fencing on, an active controller that has heard nothing from the
    /// coordination node for the whole session timeout gives up its session and the role: the
    /// coordination node has expired the session by now (it counts from the last request it
    /// received, which is no later than the last reply we received), so another broker may
    /// already be controller. This is Curator's `LOST` connection state; it keeps a controller
    /// cut off from the coordination node from acting on (and sending) stale decisions.
    pub(super) fn check_session_silence(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        if !self.config.controller_epoch_fencing || !self.controller.is_active() {
            return;
        }
        if self.zk.session().is_some()
            && now.since(self.zk_last_heard) >= self.zk.session_timeout_ms
        {
            self.on_session_lost(now, "session-silent", out);
        }
    }

    pub(super) fn on_connected(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let session = self.zk.session().expect("connected");
        // KIP-380/KIP-903: the broker epoch identifies this process incarnation. It is taken
        // from the first session of the process (session ids are unique and increase, like the
        // czxid Kafka uses) and kept when a lost session is re-established: the process and its
        // log did not change, so its ISR memberships stay valid (as in KRaft, where a broker
        // registers once per process start).
        if self.broker_epoch.0 < 0 {
            self.broker_epoch = BrokerEpoch(session.0);
        }
        for path in ["/brokers", "/brokers/ids", "/brokers/topics"] {
            self.zk_send(
                now,
                ZkRequest::Create {
                    path: path.into(),
                    data: vec![],
                    ephemeral: false,
                },
                ZkPurpose::EnsurePath,
                out,
            );
        }
        self.register(now, out);
    }

    pub(super) fn register(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        // The registration also reports each hosted log's end (the epoch of its last record,
        // log end offset), as KIP-966's balanced unclean recovery asks replicas for theirs
        // (GetReplicaLogInfo: LastWrittenLeaderEpoch, LogEndOffset): the controller uses it to
        // pick the most complete member of an offline partition's last ISR. The last
        // *written* epoch, not the latest cached one: a leader assigns its epoch at its log
        // end when it takes over, and a replica that led briefly without writing must not
        // outrank a longer log (topic-admin-under-faults seed 195: broker-1, a zombie leader
        // of epoch 1 at offset 942, was chosen over broker-2 with committed records up to
        // 948, which a restart had left at epoch 0 as Kafka's recovery does). The third
        // figure, the highest epoch the log's epoch cache has held (`highest_epoch_seen`),
        // tells the controller which elected leaders did take leadership.
        let logs: serde_json::Map<String, serde_json::Value> = self
            .partitions
            .iter()
            .map(|(tp, p)| {
                let epoch = p.log.last_written_epoch().unwrap_or(LeaderEpoch::UNKNOWN);
                let seen = p.log.highest_epoch_seen().unwrap_or(LeaderEpoch::UNKNOWN);
                (
                    tp.to_string(),
                    serde_json::json!([epoch.0, p.log.log_end_offset().0, seen.0]),
                )
            })
            .collect();
        let data =
            serde_json::json!({ "version": 5, "broker_epoch": self.broker_epoch.0, "logs": logs })
                .to_string()
                .into_bytes();
        self.zk_send(
            now,
            ZkRequest::Create {
                path: format!("/brokers/ids/{}", self.id.0),
                data,
                ephemeral: true,
            },
            ZkPurpose::Register,
            out,
        );
    }

    pub(super) fn elect_controller(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        self.zk_send(
            now,
            ZkRequest::GetData {
                path: "/controller".into(),
                watch: true,
            },
            ZkPurpose::ControllerRead,
            out,
        );
    }

    pub(super) fn on_zk_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        result: Result<ZkReply, ZkError>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(purpose) = self.zk.on_response(corr, &result) else {
            return;
        };
        self.zk_last_heard = now;
        if matches!(
            result,
            Err(ZkError::SessionExpired) | Err(ZkError::NoSession)
        ) {
            if self.zk.session().is_some() || matches!(purpose, ZkPurpose::Connect) {
                self.on_session_lost(now, "session-expired", out);
            }
            return;
        }
        match purpose {
            ZkPurpose::Connect => {
                if self.zk.session().is_some() {
                    self.on_connected(now, out);
                }
            }
            ZkPurpose::Ping | ZkPurpose::EnsurePath => {}
            ZkPurpose::Register => match result {
                Ok(_) => {
                    self.registered = true;
                    out.event(Event::BrokerRegistered {
                        broker: self.id,
                        broker_epoch: self.broker_epoch,
                    });
                    self.elect_controller(now, out);
                }
                Err(ZkError::NodeExists) => {
                    // Our previous session's ephemeral is still there; it goes when that
                    // session expires. Kafka retries the same way.
                    out.timer(1000, BrokerTimer::RegisterRetry);
                }
                Err(_) => out.timer(1000, BrokerTimer::RegisterRetry),
            },
            ZkPurpose::ControllerRead => match result {
                Ok(ZkReply::Data { data, .. }) => {
                    self.set_controller(now, parse_controller_id(&data), out);
                    if self.controller_id != Some(self.id) && self.controller.is_active() {
                        self.controller.resign("controller-moved", out);
                    }
                }
                Err(ZkError::NoNode) => {
                    let data = format!("{{\"version\":1,\"brokerid\":{}}}", self.id.0).into_bytes();
                    self.zk_send(
                        now,
                        ZkRequest::Create {
                            path: "/controller".into(),
                            data,
                            ephemeral: true,
                        },
                        ZkPurpose::ControllerCreate,
                        out,
                    );
                }
                _ => {}
            },
            ZkPurpose::ControllerCreate => match result {
                Ok(_) => {
                    self.controller_id = Some(self.id);
                    self.zk_send(
                        now,
                        ZkRequest::GetData {
                            path: "/controller_epoch".into(),
                            watch: false,
                        },
                        ZkPurpose::EpochRead,
                        out,
                    );
                }
                Err(_) => self.elect_controller(now, out),
            },
            ZkPurpose::EpochRead => match result {
                Ok(ZkReply::Data { data, version }) => {
                    let epoch = ControllerEpoch(parse_i32(&data).unwrap_or(0) + 1);
                    self.zk_send(
                        now,
                        ZkRequest::SetData {
                            path: "/controller_epoch".into(),
                            data: epoch.0.to_string().into_bytes(),
                            expected_version: Some(version),
                        },
                        ZkPurpose::EpochWrite { epoch },
                        out,
                    );
                }
                Err(ZkError::NoNode) => {
                    self.zk_send(
                        now,
                        ZkRequest::Create {
                            path: "/controller_epoch".into(),
                            data: b"1".to_vec(),
                            ephemeral: false,
                        },
                        ZkPurpose::EpochCreate,
                        out,
                    );
                }
                _ => self.elect_controller(now, out),
            },
            ZkPurpose::EpochWrite { epoch } => match result {
                Ok(ZkReply::Stat { version }) => self.become_controller(now, epoch, version, out),
                _ => self.elect_controller(now, out),
            },
            ZkPurpose::EpochCreate => match result {
                Ok(_) => self.become_controller(now, ControllerEpoch(1), ZkVersion(0), out),
                _ => self.elect_controller(now, out),
            },
            ZkPurpose::Controller(op) => {
                let mut reqs = Vec::new();
                self.controller.on_zk_reply(now, op, result, &mut reqs, out);
                self.flush_controller_requests(now, reqs, out);
            }
        }
    }

    pub(super) fn on_zk_watch(
        &mut self,
        now: Instant,
        path: String,
        kind: WatchKind,
        out: &mut Effects<BrokerTimer>,
    ) {
        if path == "/controller" {
            self.elect_controller(now, out);
        } else if self.controller.is_active() {
            let mut reqs = Vec::new();
            self.controller.on_watch(&path, kind, &mut reqs);
            self.flush_controller_requests(now, reqs, out);
        }
    }

    /// A watch notification: only one on the current session, delivered in order, is acted on.
    pub(super) fn on_zk_watch_notification(
        &mut self,
        now: Instant,
        session: SessionId,
        path: String,
        kind: WatchKind,
        seq: u64,
        out: &mut Effects<BrokerTimer>,
    ) {
        if Some(session) == self.zk.session() {
            self.zk_last_heard = now;
            if self.zk.on_watch(session, seq) {
                self.on_zk_watch(now, path, kind, out);
            }
        }
    }

    /// The coordination node says a session is gone; ours, if it is the current one.
    pub(super) fn on_zk_session_expired(
        &mut self,
        now: Instant,
        session: SessionId,
        out: &mut Effects<BrokerTimer>,
    ) {
        if Some(session) == self.zk.session() {
            self.on_session_lost(now, "session-expired", out);
        }
    }

    /// The session's periodic tick: resend unanswered requests, ping, reconnect, and give up a
    /// silent session (the caller re-arms the tick).
    pub(super) fn on_zk_tick(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        for msg in self.zk.retransmit_due(now) {
            out.send(NodeId::Zk, msg);
        }
        if self.zk.ping_due(now) {
            self.zk_send(now, ZkRequest::Ping, ZkPurpose::Ping, out);
        }
        if self.zk.state == SessionState::Disconnected {
            self.zk_connect(now, out);
        }
        self.check_session_silence(now, out);
    }

    pub(super) fn on_zk_reconnect(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        if self.zk.state == SessionState::Disconnected {
            self.zk_connect(now, out);
        }
    }

    pub(super) fn on_register_retry(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        if self.zk.session().is_some() && !self.registered {
            self.register(now, out);
        }
    }

    /// A Connect to the coordination node was lost (its connection broke or the send failed):
    /// there is no session to survive, so try again shortly.
    pub(super) fn zk_connect_lost(&mut self, out: &mut Effects<BrokerTimer>) {
        self.zk.expire();
        out.timer(500, BrokerTimer::ZkReconnect);
    }
}

fn parse_i32(data: &[u8]) -> Option<i32> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

fn parse_controller_id(data: &[u8]) -> Option<BrokerId> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    Some(BrokerId(v.get("brokerid")?.as_i64()? as i32))
}

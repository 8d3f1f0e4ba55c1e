//! The node shell and the world: each model actor runs in its own madsim node, talking to the
//! others over simulated TCP and writing to the simulated disk.
//!
//! # The shell
//! [`run_actor`] is the only place where a state machine meets I/O. It keeps the actor's
//! timers, feeds it messages from its TCP connections, and executes the effects the actor
//! returns, **in order**: a disk write or sync finishes before any later send, so a response
//! that depends on a flush is never sent before the flush.
//!
//! The transport the shell sends and receives on is in [`crate::transport`]; the
//! [`Observer`] the shell updates from recorded events is in [`crate::observer`].

use crate::disk::SimDisk;
use crate::history::{EventRecord, HistoryEntry};
use ksim_model::disk::Disk;
use ksim_model::effects::{Actor, DiskOp, Effect, Effects};
use ksim_model::event::Event;
use ksim_model::protocol::Message;
use ksim_model::types::{BrokerId, Instant, NodeId, TopicPartition};
use madsim::net::TcpListener;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use crate::observer::Observer;
pub use crate::transport::PORT;
use crate::transport::{accept_loop, writer_loop, Inbound};

/// State shared by every node's shell and the supervisor: the recorders and the observer.
/// (madsim runs all tasks on one thread; the mutex is never contended.)
#[derive(Debug)]
pub struct Shared {
    pub start: madsim::time::Instant,
    pub history: Vec<HistoryEntry>,
    pub events: Vec<EventRecord>,
    pub messages: u64,
    /// Log fsyncs the nodes' disks carried out ([`DiskOp::Sync`]: flushes, segment rolls,
    /// recovery repairs; checkpoint writes are not counted).
    pub fsyncs: u64,
    /// Simulated time the nodes spent waiting for those fsyncs, in microseconds (each costs
    /// the simulated disk's `sync_latency_us`).
    pub fsync_us: u64,
    pub observer: Observer,
    /// Nodes that halted themselves (fatal disk error).
    pub halted: Vec<NodeId>,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    /// Each running shell's inbox, so that a process death can reset its peers' connections.
    inboxes: BTreeMap<NodeId, mpsc::UnboundedSender<Inbound>>,
    /// Replica snapshots for the replication checkers (taken as events are recorded).
    pub snapshotter: crate::snapshot::Snapshotter,
}

pub type SharedRef = Arc<Mutex<Shared>>;

impl Shared {
    pub fn new(addrs: BTreeMap<NodeId, SocketAddr>) -> SharedRef {
        let snapshotter = crate::snapshot::Snapshotter::new(
            addrs
                .keys()
                .filter_map(|n| match n {
                    NodeId::Broker(b) => Some(*b),
                    _ => None,
                })
                .collect(),
        );
        Arc::new(Mutex::new(Shared {
            start: madsim::time::Instant::now(),
            history: Vec::new(),
            events: Vec::new(),
            messages: 0,
            fsyncs: 0,
            fsync_us: 0,
            observer: Observer::default(),
            halted: Vec::new(),
            addrs,
            inboxes: BTreeMap::new(),
            snapshotter,
        }))
    }

    /// Simulated milliseconds since the world started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// `node`'s process died (killed, powered off, shut down): as its kernel would reset its
    /// TCP connections, every other node sees its connections to and from `node` close.
    /// (madsim keeps a killed node's blocked tasks, and so its sockets, alive: madsim#242.)
    pub fn reset_connections_to(&mut self, node: NodeId) {
        self.inboxes.remove(&node);
        for (other, inbox) in &self.inboxes {
            if *other != node {
                let _ = inbox.send(Inbound::Disconnected(node));
            }
        }
    }

    /// Hands `msg` to `to` as if `from` had sent it (the testbed's own requests, such as the
    /// scheduled topic administration). Returns false when `to` is not running.
    pub fn deliver(&self, to: NodeId, from: NodeId, msg: Message) -> bool {
        match self.inboxes.get(&to) {
            Some(inbox) => inbox.send(Inbound::Msg(from, msg)).is_ok(),
            None => false,
        }
    }

    /// `node` closed its connections with `peer`: `peer` sees them close.
    pub fn close_connection(&mut self, node: NodeId, peer: NodeId) {
        if let Some(inbox) = self.inboxes.get(&peer) {
            let _ = inbox.send(Inbound::Disconnected(node));
        }
    }

    /// Records an event as if `node` emitted it (the nemesis records faults this way).
    pub fn record_event(&mut self, node: NodeId, event: Event) {
        let time_ms = self.now_ms();
        self.observer.observe(time_ms, &event);
        self.events.push(EventRecord {
            time_ms,
            node,
            event,
        });
        let inboxes = &self.inboxes;
        let running = |b: BrokerId| inboxes.contains_key(&NodeId::Broker(b));
        let event = &self.events.last().expect("just pushed").event;
        self.snapshotter
            .observe(time_ms, self.events.len(), event, &running);
    }

    /// Snapshots every partition in `tps` now (the end of a run).
    pub fn snapshot_all(&mut self, tps: &[TopicPartition], trigger: &str) {
        let time_ms = self.now_ms();
        let inboxes = &self.inboxes;
        let running = |b: BrokerId| inboxes.contains_key(&NodeId::Broker(b));
        for tp in tps {
            self.snapshotter
                .take(time_ms, self.events.len(), tp, trigger, &running);
        }
    }

    /// `node`'s process has started: if it is a broker, snapshots from now on ask `actor` for
    /// its replicas' in-memory state (see [`crate::snapshot::Snapshotter::register`]).
    fn register_replicas<A: Actor + Send + 'static>(
        &mut self,
        node: NodeId,
        actor: &Arc<Mutex<A>>,
    ) {
        if let NodeId::Broker(b) = node {
            self.snapshotter.register(b, actor.clone());
        }
    }
}

fn lock(shared: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A short description of a disk operation for logs and events (no data bytes).
fn describe_disk_op(op: &ksim_model::effects::DiskOp) -> String {
    use ksim_model::effects::DiskOp;
    match op {
        DiskOp::Append { file, data } => format!("append of {} bytes to {file}", data.len()),
        DiskOp::Truncate { file, len } => format!("truncate of {file} to {len} bytes"),
        DiskOp::Sync { file } => format!("fsync of {file}"),
        DiskOp::WriteAtomic { file, data } => {
            format!("atomic write of {} bytes to {file}", data.len())
        }
        DiskOp::Delete { file } => format!("delete of {file}"),
        DiskOp::DeleteDir { dir } => format!("delete of directory {dir}"),
    }
}

/// Sleeps until `deadline` exactly: at once when it has passed.
///
/// madsim's `sleep_until` never sleeps less than 1 ms (as `tokio::time::sleep_until` does),
/// so an actor timer that came due while a message was being handled, or whose deadline was
/// less than 1 ms away when the shell went back to waiting, would fire up to 1 ms after its
/// deadline, and a periodic timer re-armed from that late time would lose a whole period
/// (a 10 000 records/s producer offered only about 8 000 under load). `Sleep::reset` sets
/// the deadline without that floor.
pub(crate) async fn sleep_exactly_until(deadline: madsim::time::Instant) {
    let sleep = madsim::time::sleep_until(deadline);
    tokio::pin!(sleep);
    sleep.as_mut().reset(deadline);
    sleep.await
}

/// Runs one actor until its node is killed (or it halts itself).
///
/// `initial` holds effects produced while the actor was built (recovery's disk repairs and
/// events); they are executed before `on_start`.
pub async fn run_actor<A: Actor + Send + 'static>(
    me: NodeId,
    actor: A,
    initial: Effects<A::Timer>,
    shared: SharedRef,
    disk_sim: Arc<SimDisk>,
) {
    let mut disk = disk_sim.handle(&me.to_string());
    // The inbox and the per-peer writer queues below are unbounded on purpose. Every task of
    // the simulation runs on madsim's one thread, and the actor drains its inbox between
    // handlers without waiting on anything but the simulated disk, so an inbox holds at most
    // what arrived during one handler or fsync. What can pile up is bounded by the protocol,
    // not by the queue: each client has `max.in.flight.requests.per.connection` produce
    // requests and one fetch per broker outstanding, each follower one fetch per leader broker
    // it follows partitions from, and a request is re-sent only after `request.timeout.ms`; a writer whose link is clogged
    // holds those same requests (and the answers to them) until the heal. A bound would add a
    // back-pressure Kafka's broker does not have on this path (its `queued.max.requests` caps
    // requests being handled, which the single-threaded actor never exceeds), and a full
    // queue would have to drop or block, changing the run.
    let (inbox_tx, mut inbox_rx) = mpsc::unbounded_channel::<Inbound>();
    let addr = lock(&shared).addrs[&me];
    lock(&shared).inboxes.insert(me, inbox_tx.clone());
    let listener = TcpListener::bind(addr).await.expect("bind node address");
    madsim::task::spawn(accept_loop(listener, inbox_tx.clone()));

    let mut writers: BTreeMap<NodeId, mpsc::UnboundedSender<(Message, bool)>> = BTreeMap::new();
    // Per peer, the latest connection it opened to this node (its number, and the queue of
    // the task writing replies on it).
    type Route = (u64, mpsc::UnboundedSender<(NodeId, Message)>);
    let mut reply_routes: BTreeMap<NodeId, Route> = BTreeMap::new();
    let mut timers: BTreeMap<(u64, u64), A::Timer> = BTreeMap::new();
    let mut timer_seq: u64 = 0;
    let start = lock(&shared).start;

    let mut out = initial;
    let now = Instant(start.elapsed().as_millis() as u64);
    // The actor is shared with the snapshotter, which reads it only between handlers; a
    // handler holds the lock, and no handler or effect waits while holding it.
    let actor = Arc::new(Mutex::new(actor));
    {
        let mut a = lock_actor(&actor);
        a.on_start(now, &mut out);
        a.invariants();
    }
    lock(&shared).register_replicas(me, &actor);
    loop {
        // Execute effects in order.
        let mut now_ms = start.elapsed().as_millis() as u64;
        let mut halt: Option<String> = None;
        for effect in out.drain() {
            match effect {
                effect @ (Effect::Send { .. } | Effect::SendTracked { .. }) => {
                    let (to, msg, tracked) = match effect {
                        Effect::Send { to, msg } => (to, msg, false),
                        Effect::SendTracked { to, msg } => (to, msg, true),
                        _ => unreachable!("matched a send"),
                    };
                    tracing::trace!(from = %me, %to, api = msg.api_name(), "send");
                    lock(&shared).messages += 1;
                    if to == me {
                        // A node's request to itself (a transaction coordinator's markers for
                        // a partition its own broker leads) and the answer to it: Kafka sends
                        // them through its own network stack; here they go straight to the
                        // node's inbox, handled after the current handler's effects.
                        let _ = inbox_tx.send(Inbound::Msg(me, msg));
                        continue;
                    }
                    if msg.is_reply() {
                        // Back on the connection the peer opened; lost if there is none.
                        match reply_routes.get(&to) {
                            Some((_, route)) if route.send((me, msg)).is_ok() => {}
                            _ => tracing::trace!(from = %me, %to, "reply lost: no connection"),
                        }
                        continue;
                    }
                    let tx = writers.entry(to).or_insert_with(|| {
                        let (tx, rx) = mpsc::unbounded_channel();
                        let peer_addr = lock(&shared).addrs[&to];
                        madsim::task::spawn(writer_loop(me, to, peer_addr, rx, inbox_tx.clone()));
                        tx
                    });
                    let _ = tx.send((msg, tracked));
                }
                Effect::SetTimer { after_ms, timer } => {
                    timer_seq += 1;
                    timers.insert((now_ms + after_ms, timer_seq), timer);
                }
                Effect::Disk(op) => {
                    if let Err(e) = disk.apply(&op) {
                        halt = Some(format!("disk error on {}: {e}", describe_disk_op(&op)));
                        break;
                    }
                    // A log fsync costs the simulated disk's `sync_latency_us`, and the node
                    // waits for it before it carries out the next effect, so the fsync delays
                    // every response sent after it (as Kafka's produce path waits for a flush
                    // under the log lock). Checkpoint writes (`WriteAtomic`) are not charged:
                    // they are rare and off the produce path.
                    if matches!(op, DiskOp::Sync { .. }) {
                        let latency = disk_sim.latency(&op);
                        {
                            let mut s = lock(&shared);
                            s.fsyncs += 1;
                            s.fsync_us += latency.as_micros() as u64;
                        }
                        if !latency.is_zero() {
                            madsim::time::sleep(latency).await;
                            now_ms = start.elapsed().as_millis() as u64;
                        }
                    }
                }
                Effect::Event(event) => {
                    tracing::debug!(node = %me, ?event, "event");
                    lock(&shared).record_event(me, event)
                }
                Effect::Op(op) => {
                    let mut s = lock(&shared);
                    let index = s.history.len() as u64;
                    let time_ms = s.now_ms();
                    s.history.push(HistoryEntry {
                        index,
                        time_ms,
                        process: me,
                        op,
                    });
                }
                Effect::CloseConnection { peer } => {
                    writers.remove(&peer);
                    reply_routes.remove(&peer);
                    lock(&shared).close_connection(me, peer);
                }
                Effect::Halt { reason } => {
                    halt = Some(reason);
                    break;
                }
            }
        }
        if let Some(reason) = halt {
            tracing::warn!(node = %me, %reason, "halted");
            // Kafka halts the process on a fatal log-directory error (single log dir).
            {
                let mut s = lock(&shared);
                s.record_event(me, Event::Halted { reason });
                s.halted.push(me);
                // The process exits (Kafka calls Runtime.halt): its connections reset, and
                // madsim stops the node; the heal phase restarts it.
                s.reset_connections_to(me);
            }
            madsim::runtime::Handle::current().kill(madsim::plugin::node());
            std::future::pending::<()>().await;
        }

        // Wait for the next input: a message, or the earliest timer.
        let next_deadline = timers.keys().next().map(|(t, _)| *t);
        let input = match next_deadline {
            Some(deadline) => {
                let wake = start + Duration::from_millis(deadline);
                tokio::select! {
                    biased;
                    m = inbox_rx.recv() => Some(m.expect("inbox sender held by this task")),
                    _ = sleep_exactly_until(wake) => None,
                }
            }
            None => Some(
                inbox_rx
                    .recv()
                    .await
                    .expect("inbox sender held by this task"),
            ),
        };
        let now = Instant(start.elapsed().as_millis() as u64);
        let mut actor = lock_actor(&actor);
        match input {
            // Every handler is followed by the actor's invariants (TigerBeetle's
            // `defer self.invariants()`).
            Some(Inbound::Msg(from, msg)) => {
                actor.on_message(now, from, msg, &mut out);
                actor.invariants();
            }
            Some(Inbound::ReplyRoute(peer, connection, route)) => {
                reply_routes.insert(peer, (connection, route));
                continue;
            }
            Some(Inbound::RouteClosed(peer, connection)) => {
                if reply_routes
                    .get(&peer)
                    .is_some_and(|(c, _)| *c == connection)
                {
                    reply_routes.remove(&peer);
                }
                continue;
            }
            Some(Inbound::Disconnected(peer)) => {
                // The next send to that peer must reconnect.
                writers.remove(&peer);
                actor.on_disconnect(now, peer, &mut out);
                actor.invariants();
            }
            Some(Inbound::SendFailed(peer, msg)) => {
                actor.on_send_failed(now, peer, msg, &mut out);
                actor.invariants();
            }
            Some(Inbound::Sent(peer, msg)) => {
                actor.on_sent(now, peer, msg, &mut out);
                actor.invariants();
            }
            None => {
                let due: Vec<(u64, u64)> = timers
                    .range(..=(now.as_ms(), u64::MAX))
                    .map(|(k, _)| *k)
                    .collect();
                for key in due {
                    let timer = timers.remove(&key).expect("present");
                    actor.on_timeout(now, timer, &mut out);
                    actor.invariants();
                }
            }
        }
    }
}

/// Locks an actor shared between its shell and the snapshotter (a panic inside a handler
/// poisons nothing the simulation reads afterwards: the run is over).
pub(crate) fn lock_actor<A>(actor: &Mutex<A>) -> std::sync::MutexGuard<'_, A> {
    actor.lock().unwrap_or_else(|e| e.into_inner())
}

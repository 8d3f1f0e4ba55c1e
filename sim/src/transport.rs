//! The transport: frames over simulated TCP, one outbound connection per peer, replies on
//! the connection the peer opened.
//!
//! Every message travels as one frame: a 4-byte big-endian length, then the bincode encoding of
//! `(sender, message)`. Each node keeps one outbound connection per peer, opened on first use,
//! for its requests; the answers (and a coordination node's pushes) come back on that same
//! connection, as in Kafka's and ZooKeeper's protocols ([`Message::is_reply`]). A reply is
//! written to the latest connection the peer opened to this node; if that connection has
//! broken, the reply is lost, as it would be in Kafka (the requester's timeout or its
//! disconnect handling takes over). Keeping each answer on its request's connection matters
//! under faults: a connection stalled by a partition (below) delays everything queued on it,
//! and an answer sent on a connection of its own would wait behind the responder's unrelated
//! traffic (`controller-split-brain-fenced` seeds 10432, 10976: a controller's answers to a
//! leader's AlterPartition waited behind its stalled connection to that leader). Requests on a
//! stalled connection still wait: madsim retries a held frame with a backoff that doubles up
//! to 10 s, so a connection can deliver up to 10 s after the heal (Linux's retransmission
//! backoff reaches 120 s), and heal phases must allow it. A producer closes a connection whose
//! request outlived `request.timeout.ms`, as Kafka's `NetworkClient` does
//! (`Effect::CloseConnection`): the frames already written stay in the network and are still
//! delivered after the heal, so a retry on the new connection can overtake them (the
//! KAFKA-17754 and `hanging-transaction-tv1` races); other clients and the brokers keep the
//! stalled connection.
//! madsim's TCP behaves like the real thing under faults: bytes on an open connection across
//! a clogged link are held and delivered after the heal (a long stall, not a reset);
//! connecting across a clogged link or to a dead node fails at once. The shell reports both
//! kinds of trouble to the actor as Kafka's `NetworkClient` sees them: `on_send_failed` when a
//! message could not be sent at all, `on_disconnect` when a connection to or from a peer broke.
//!
//! **Bursts travel together.** A writer drains every frame queued on its connection by the
//! time it wakes and writes them with one flush, as TCP coalesces a burst into a few segments.
//! This matters for more than speed: madsim delivers each flush as one payload whose receive
//! loop sleeps until the payload's arrival time, and a madsim sleep lasts at least 1 ms, so
//! frames flushed one by one would arrive at least 1 ms apart and a burst of N frames would take
//! N ms. Before this (up to b6293dc) a controller creating 3000 partitions waited 3 s for
//! ZooKeeper's answers, one a millisecond, and the 3000-partition default scenario acknowledged
//! 2 records in 10 s; with it, the same run acknowledges 2972 and meets its expectation
//! (`ksim bench`, scale table). Frames keep their order on a connection; if the flush fails,
//! every frame of the burst is reported unsent (`on_send_failed`), and each tracked frame is
//! reported sent only once the whole burst is flushed.

use ksim_model::protocol::Message;
use ksim_model::types::NodeId;
use madsim::net::{TcpListener, TcpStream};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The port every node listens on.
pub const PORT: u16 = 9092;

/// Upper bound on one frame, to catch corrupt length prefixes.
const MAX_FRAME_BYTES: u32 = 64 << 20;

pub(crate) enum Inbound {
    Msg(NodeId, Message),
    /// The peer opened connection number `.1` to this node: replies to it go to `.2`.
    ReplyRoute(NodeId, u64, mpsc::UnboundedSender<(NodeId, Message)>),
    /// The peer's connection number `.1` to this node closed.
    RouteClosed(NodeId, u64),
    Disconnected(NodeId),
    SendFailed(NodeId, Message),
    /// A tracked message was written to its connection.
    Sent(NodeId, Message),
}

/// Appends the frame of `msg` from `from` to `out`: the body is encoded in place after its
/// length prefix (sized first, so that record batches are copied once, not into a body and
/// then a frame).
fn append_frame(out: &mut Vec<u8>, from: NodeId, msg: &Message) {
    let value = (from, msg);
    let size = bincode::serialized_size(&value).expect("messages always serialize") as usize;
    out.reserve(4 + size);
    let start = out.len();
    out.extend_from_slice(&(size as u32).to_be_bytes());
    bincode::serialize_into(&mut *out, &value).expect("messages always serialize");
    debug_assert_eq!(out.len(), start + 4 + size);
}

async fn read_frame<R: AsyncReadExt + Unpin>(stream: &mut R) -> Option<(NodeId, Message)> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME_BYTES {
        return None;
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await.ok()?;
    bincode::deserialize(&body).ok()
}

pub(crate) async fn accept_loop(listener: TcpListener, inbox: mpsc::UnboundedSender<Inbound>) {
    let mut next_connection: u64 = 0;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        next_connection += 1;
        let connection = next_connection;
        let inbox = inbox.clone();
        madsim::task::spawn(async move {
            let (mut rd, wr) = tokio::io::split(stream);
            let mut wr = Some(wr);
            let mut peer = None;
            while let Some((from, msg)) = read_frame(&mut rd).await {
                if let Some(wr) = wr.take() {
                    // The first frame names the peer: from now on replies to it go here.
                    let (tx, rx) = mpsc::unbounded_channel();
                    madsim::task::spawn(reply_writer_loop(from, wr, rx));
                    if inbox
                        .send(Inbound::ReplyRoute(from, connection, tx))
                        .is_err()
                    {
                        return;
                    }
                }
                peer = Some(from);
                if inbox.send(Inbound::Msg(from, msg)).is_err() {
                    return;
                }
            }
            if let Some(p) = peer {
                let _ = inbox.send(Inbound::RouteClosed(p, connection));
                let _ = inbox.send(Inbound::Disconnected(p));
            }
        });
    }
}

/// Writes a node's replies to `peer` on the connection `peer` opened; ends when the route is
/// dropped or the connection breaks (the replies still queued are lost).
async fn reply_writer_loop(
    peer: NodeId,
    mut wr: tokio::io::WriteHalf<TcpStream>,
    mut queue: mpsc::UnboundedReceiver<(NodeId, Message)>,
) {
    let mut burst = Vec::new();
    while let Some((me, msg)) = queue.recv().await {
        // Every reply queued by now joins this flush: one payload, as TCP would coalesce them.
        burst.clear();
        append_frame(&mut burst, me, &msg);
        while let Ok((me, msg)) = queue.try_recv() {
            append_frame(&mut burst, me, &msg);
        }
        if !(wr.write_all(&burst).await.is_ok() && wr.flush().await.is_ok()) {
            tracing::trace!(from = %me, to = %peer, "reply connection broken");
            return;
        }
    }
}

pub(crate) async fn writer_loop(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    mut queue: mpsc::UnboundedReceiver<(Message, bool)>,
    inbox: mpsc::UnboundedSender<Inbound>,
) {
    // The open connection: its write half, and the task reading the replies on it.
    let mut conn: Option<(
        tokio::io::WriteHalf<TcpStream>,
        madsim::task::JoinHandle<()>,
    )> = None;
    // A burst's frames and its messages (kept for `Sent` / `SendFailed`), reused so that the
    // per-message path allocates nothing once the buffers have grown.
    let mut burst = Vec::new();
    let mut sent: Vec<(Message, bool)> = Vec::new();
    while let Some((msg, tracked)) = queue.recv().await {
        if conn.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let (mut rd, wr) = tokio::io::split(s);
                    let replies = inbox.clone();
                    let reader = madsim::task::spawn(async move {
                        while let Some((from, msg)) = read_frame(&mut rd).await {
                            if replies.send(Inbound::Msg(from, msg)).is_err() {
                                return;
                            }
                        }
                    });
                    conn = Some((wr, reader));
                }
                Err(_) => {
                    let _ = inbox.send(Inbound::SendFailed(peer, msg));
                    continue;
                }
            }
        }
        // Every message queued by now joins this flush: one payload, as TCP would coalesce
        // a burst into a few segments (see the module doc).
        burst.clear();
        append_frame(&mut burst, me, &msg);
        sent.push((msg, tracked));
        while let Ok((msg, tracked)) = queue.try_recv() {
            append_frame(&mut burst, me, &msg);
            sent.push((msg, tracked));
        }
        let (wr, _) = conn.as_mut().expect("connected");
        let ok = wr.write_all(&burst).await.is_ok() && wr.flush().await.is_ok();
        if !ok {
            if let Some((_, reader)) = conn.take() {
                reader.abort();
            }
            let _ = inbox.send(Inbound::Disconnected(peer));
            for (msg, _) in sent.drain(..) {
                let _ = inbox.send(Inbound::SendFailed(peer, msg));
            }
        } else {
            for (msg, tracked) in sent.drain(..) {
                if tracked {
                    let _ = inbox.send(Inbound::Sent(peer, msg));
                }
            }
        }
    }
    // The node dropped this connection (a disconnect, or it closed it): replies still on
    // their way over it are lost with it.
    if let Some((_, reader)) = conn.take() {
        reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksim_model::types::{BrokerId, CorrelationId};
    use std::net::{IpAddr, Ipv4Addr};

    /// Frames queued on a connection at once arrive together, in order, in the same simulated
    /// millisecond; flushed one by one they would have taken a millisecond each (the module
    /// doc's "bursts travel together").
    #[test]
    fn a_burst_of_frames_arrives_at_once_and_in_order() {
        const N: u64 = 50;
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        let addr = SocketAddr::new(ip(2), PORT);
        let (server_inbox, mut server_rx) = mpsc::unbounded_channel();
        let server = rt.create_node().name("server").ip(ip(2)).build();
        server.spawn(async move {
            let listener = TcpListener::bind(addr).await.expect("bind");
            accept_loop(listener, server_inbox).await;
        });
        let client = rt.create_node().name("client").ip(ip(1)).build();
        let arrivals = rt.block_on(async move {
            client
                .spawn(async move {
                    let me = NodeId::Broker(BrokerId(1));
                    let peer = NodeId::Broker(BrokerId(2));
                    let (queue, rx) = mpsc::unbounded_channel();
                    let (client_inbox, _client_rx) = mpsc::unbounded_channel();
                    // The first frame opens the connection; the burst follows once it is up.
                    let metadata = |corr| Message::Metadata {
                        corr: CorrelationId(corr),
                        topics: vec![],
                    };
                    queue.send((metadata(0), false)).expect("queue");
                    madsim::task::spawn(writer_loop(me, peer, addr, rx, client_inbox));
                    madsim::time::sleep(std::time::Duration::from_millis(100)).await;
                    for corr in 1..=N {
                        queue.send((metadata(corr), false)).expect("queue");
                    }
                    let mut arrivals = Vec::new();
                    while arrivals.len() < N as usize + 1 {
                        if let Some(Inbound::Msg(from, Message::Metadata { corr, .. })) =
                            server_rx.recv().await
                        {
                            assert_eq!(from, me);
                            arrivals.push((corr.0, madsim::time::Instant::now()));
                        }
                    }
                    arrivals
                })
                .await
                .expect("client task")
        });
        let corrs: Vec<u64> = arrivals.iter().map(|(c, _)| *c).collect();
        assert_eq!(corrs, (0..=N).collect::<Vec<_>>(), "in order");
        let burst = &arrivals[1..];
        assert!(
            burst.iter().all(|(_, t)| *t == burst[0].1),
            "the burst arrived over {:?}",
            burst.last().unwrap().1 - burst[0].1
        );
    }
}

//! What the testbed observes on the coordination node: committed writes to partition state
//! znodes, `/controller_epoch` and topic deletion markers, recorded where they commit.

use super::*;

/// The `(path, data)` of each write (`Create`, `SetData`) in a request, in op order: one entry
/// per op of a `Multi` (`None` for the others), so that it lines up with the multi's results.
pub(super) fn data_writes(req: &ZkRequest) -> Vec<Option<(String, Vec<u8>)>> {
    fn op(op: &ZkOp) -> Option<(String, Vec<u8>)> {
        match op {
            ZkOp::Create { path, data, .. } | ZkOp::SetData { path, data, .. } => {
                Some((path.clone(), data.clone()))
            }
            ZkOp::Check { .. } | ZkOp::Delete { .. } => None,
        }
    }
    match req {
        ZkRequest::Create { path, data, .. } | ZkRequest::SetData { path, data, .. } => {
            vec![Some((path.clone(), data.clone()))]
        }
        ZkRequest::Multi { ops } => ops.iter().map(op).collect(),
        _ => Vec::new(),
    }
}

/// Records the committed writes the testbed observes on the coordination node: a partition's
/// state znode, as `partition-state-changed` (see [`crate::controller::observe_state_write`]),
/// `/controller_epoch`, as `controller-epoch-incremented` by the session owner `writer`, and a
/// topic's deletion marker `/admin/delete_topics/T`, as `topic-deleted`.
/// Ground truth lives here, where the write commits: a writer whose answer is lost does not
/// know it landed, but every later reader sees it.
pub(super) fn observe_writes(
    writes: &[Option<(String, Vec<u8>)>],
    reply: &ZkReply,
    writer: Option<NodeId>,
    out: &mut Effects<ZkTimer>,
) {
    let single;
    let replies: &[ZkReply] = match reply {
        ZkReply::Multi { results } => results,
        other => {
            single = [other.clone()];
            &single
        }
    };
    for (write, reply) in writes.iter().zip(replies) {
        let Some((path, data)) = write else {
            continue;
        };
        let version = match reply {
            ZkReply::Stat { version } => *version,
            ZkReply::Created { .. } => ZkVersion(0),
            _ => continue,
        };
        if let Some(topic) = path.strip_prefix("/admin/delete_topics/") {
            // The controller's deletion of a topic committed (the marker is created in the
            // same multi that deletes the topic's znodes).
            let epoch = serde_json::from_slice::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v.get("controller_epoch")?.as_i64());
            if let (Some(epoch), 0) = (epoch, version.0) {
                out.event(Event::TopicDeleted {
                    topic: topic.to_string(),
                    controller_epoch: crate::types::ControllerEpoch(epoch as i32),
                });
            }
        } else if path == "/controller_epoch" {
            let epoch = std::str::from_utf8(data).ok().and_then(|t| t.parse().ok());
            if let (Some(epoch), Some(NodeId::Broker(broker))) = (epoch, writer) {
                out.event(Event::ControllerEpochIncremented {
                    broker,
                    controller_epoch: crate::types::ControllerEpoch(epoch),
                });
            }
        } else if let Some(event) = crate::controller::observe_state_write(path, data, version) {
            out.event(event);
        }
    }
}

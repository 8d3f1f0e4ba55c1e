//! The broker's logs as a whole (Kafka's `LogManager.scala`, `LogCleaner`): the periodic flush,
//! retention and cleaner passes, and the recovery-point and log-start-offset checkpoints.

use super::{Broker, BrokerTimer};
use crate::effects::{DiskOp, Effects};
use crate::event::Event;
use crate::log::checkpoint;
use crate::types::*;

impl Broker {
    /// `log.flush.interval.ms`: flush every log with unflushed messages.
    pub(super) fn flush_logs(&mut self, out: &mut Effects<BrokerTimer>) {
        let mut ops = Vec::new();
        for p in self.partitions.values_mut() {
            if p.log.unflushed_messages() > 0 {
                p.log.flush(&mut ops);
            }
        }
        for op in ops {
            out.disk(op);
        }
    }

    /// Writes Kafka's `recovery-point-offset-checkpoint` (every log's recovery point).
    pub(super) fn write_recovery_point_checkpoint(&self, out: &mut Effects<BrokerTimer>) {
        let entries = self
            .partitions
            .iter()
            .map(|(tp, p)| (tp.clone(), p.log.recovery_point()))
            .collect();
        out.disk(DiskOp::WriteAtomic {
            file: checkpoint::RECOVERY_POINT_CHECKPOINT.into(),
            data: checkpoint::encode(&entries),
        });
    }

    /// Writes Kafka's `log-start-offset-checkpoint` (every log start offset above 0, as Kafka
    /// leaves out logs that start at 0).
    pub(super) fn write_log_start_offset_checkpoint(&self, out: &mut Effects<BrokerTimer>) {
        let entries = self
            .partitions
            .iter()
            .filter(|(_, p)| p.log.log_start_offset().0 > 0)
            .map(|(tp, p)| (tp.clone(), p.log.log_start_offset()))
            .collect();
        out.disk(DiskOp::WriteAtomic {
            file: checkpoint::LOG_START_OFFSET_CHECKPOINT.into(),
            data: checkpoint::encode(&entries),
        });
    }

    /// One retention pass over every hosted log (Kafka's `LogManager.cleanupLogs`): deletes
    /// segments by `retention.ms` / `retention.bytes` / log start offset, never at or above
    /// the replica's HW, and checkpoints the log start offsets if any moved.
    pub(super) fn on_log_retention_check(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let me = self.id;
        let now_ms = now.as_ms() as i64;
        let mut moved = false;
        for (tp, p) in self.partitions.iter_mut() {
            let mut ops = Vec::new();
            let Some(r) = p
                .log
                .delete_old_segments(now_ms, p.high_watermark, &mut ops)
            else {
                continue;
            };
            for op in ops {
                out.disk(op);
            }
            out.event(Event::LogSegmentsDeleted {
                tp: tp.clone(),
                broker: me,
                base_offsets: r.deleted_segments.clone(),
                deleted_bytes: r.deleted_bytes,
                log_start_offset: r.new_log_start_offset,
                reason: r.reason.into(),
            });
            if r.new_log_start_offset > r.old_log_start_offset {
                moved = true;
                out.event(Event::LogStartOffsetAdvanced {
                    tp: tp.clone(),
                    broker: me,
                    log_start_offset: r.new_log_start_offset,
                    reason: "retention".into(),
                });
            }
        }
        if moved {
            self.write_log_start_offset_checkpoint(out);
        }
    }

    /// One cleaner pass over every compacted log (Kafka's `LogCleaner`), below each replica's
    /// HW.
    pub(super) fn on_log_cleaner_tick(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let me = self.id;
        let now_ms = now.as_ms() as i64;
        for (tp, p) in self.partitions.iter_mut() {
            let mut ops = Vec::new();
            let Some(r) = p.log.clean(now_ms, p.high_watermark, &mut ops) else {
                continue;
            };
            for op in ops {
                out.disk(op);
            }
            out.event(Event::LogCleaned {
                tp: tp.clone(),
                broker: me,
                cleaned_segments: r.cleaned_segments.len(),
                superseded: r.superseded,
                expired_tombstones: r.expired_tombstones,
            });
        }
    }

    /// Whether any topic this broker knows compacts (the cleaner runs only then).
    pub(super) fn any_compacted_topic(&self) -> bool {
        self.config.log_cleanup_policy.compact
            || self
                .topic_configs
                .values()
                .any(|c| c.cleanup_policy.is_some_and(|p| p.compact))
    }
}

pub(super) fn parse_dir(dir: &str) -> Option<TopicPartition> {
    let (topic, p) = dir.rsplit_once('-')?;
    Some(TopicPartition::new(topic, p.parse().ok()?))
}

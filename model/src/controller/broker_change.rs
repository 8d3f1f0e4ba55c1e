//! Broker membership: the `/brokers/ids` child watch, the scans of the registrations (each
//! with its broker epoch, KIP-380, and the logs it reported), and the failure and startup
//! passes run when the live set changes, including a broker that bounced between two scans.
//!
//! Mirrors Kafka's `KafkaController.processBrokerChange`, `onBrokerFailure` and
//! `onBrokerStartup`.

use super::*;

impl Controller {
    /// A watch fired.
    pub fn on_watch(&mut self, path: &str, _kind: WatchKind, reqs: &mut Reqs) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if path == "/brokers/ids" {
            a.scan += 1;
            reqs.push((
                ZkRequest::GetChildren {
                    path: "/brokers/ids".into(),
                    watch: true,
                },
                ControllerZkOp::BrokerIds { scan: a.scan },
            ));
        }
    }

    pub(super) fn scan_done(a: &mut Active) {
        let result = std::mem::take(&mut a.scan_result);
        if a.awaiting_initial_scan {
            // The first scan to complete (a broker change during loading supersedes the first
            // request) gives the live set the controller starts from.
            a.awaiting_initial_scan = false;
            a.live = result;
            a.loading -= 1;
        } else {
            a.queue.push_back(CtlEvent::BrokersChanged(result));
        }
    }

    /// The live set changed (a completed scan of `/brokers/ids`).
    pub(super) fn on_brokers_changed(
        &mut self,
        new_live: BTreeMap<BrokerId, BrokerEpoch>,
        reqs: &mut Reqs,
    ) {
        let a = self.active.as_mut().expect("active");
        let old = std::mem::replace(&mut a.live, new_live.clone());
        let bounced: BTreeSet<BrokerId> = new_live
            .iter()
            .filter(|(b, e)| old.get(b).is_some_and(|o| o != *e))
            .map(|(b, _)| *b)
            .collect();
        let added: BTreeSet<BrokerId> = new_live
            .keys()
            .filter(|b| !old.contains_key(b))
            .copied()
            .collect();
        let live: BTreeSet<BrokerId> = new_live.keys().copied().collect();
        let eligible: BTreeSet<BrokerId> = live.difference(&bounced).copied().collect();
        let pending = a.pending.as_mut().expect("pending");
        pending.full_to = added.union(&bounced).copied().collect();
        if !bounced.is_empty() {
            // Kafka's BrokerChange handler runs onBrokerFailure for a bounced broker
            // (it restarted between two reads of /brokers/ids) and then
            // onBrokerStartup, whose online-partition pass may elect it. Here the
            // failure pass is this reconcile; the startup pass runs next, once its
            // writes are answered, with every live broker eligible (kip-101-hw-
            // truncation seed 160: broker-0, the only ISR member of events-0, bounced
            // and the partition stayed offline to the end).
            a.queue.push_front(CtlEvent::BrokersChanged(new_live));
        }
        self.reconcile(&eligible, reqs);
    }
}

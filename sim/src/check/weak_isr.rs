//! `weak-isr`: every member of the leader's own (local) ISR holds the leader's records below
//! its high watermark.
//!
//! **Source.** KafkaReplication.tla (hachikuji/kafka-specification), `WeakIsr`:
//!
//! ```text
//! WeakIsr == \A r1 \in Replicas :
//!     \/ ~ ReplicaPresumesLeadership(r1)
//!     \/ LET hw == replicaState[r1].hw
//!        IN  \/ hw = 0
//!            \/ \A r2 \in replicaState[r1].isr, offset \in 0 .. (hw - 1) : \E record \in LogRecords :
//!                  /\ ReplicaLog!HasEntry(r1, record, offset)
//!                  /\ ReplicaLog!HasEntry(r2, record, offset)
//! ```
//!
//! It is [`super::strong_isr`]'s statement over the ISR the leader itself holds (from its
//! LeaderAndIsr and the ISR changes the controller confirmed to it) instead of the controller's.
//! The spec calls it weak "because the leaders are actually elected from the quorum ISR":
//! disagreement about the true ISR can lose committed data even while this holds, yet we
//! expect it to hold and the cases where it fails are instructive (a follower that truncated
//! records its leader counted as replicated: KIP-101, KIP-320).
//!
//! **How it is judged, and what is allowed.** As for `strong-isr` (see there): at each replica
//! snapshot, each running broker acting as leader with in-memory HW `h`, each member of its
//! local ISR must hold the leader's `(value, leader epoch)` at every offset below `h`, unless it
//! lost power, its disk or had a disk fault and has not rejoined the ISR since. The local ISR
//! is the committed one (`became-leader`, then `isr-changed`); a member being added (KIP-497's
//! maximal ISR) is not in it yet.

use super::lesson::{self, Lesson, Prevention};
use super::strong_isr::{isr_holds_leader_records, IsrKind};
use super::{CheckInput, Checker, Violation};

/// See the module documentation.
pub struct WeakIsr;

impl Checker for WeakIsr {
    fn name(&self) -> &'static str {
        "weak-isr"
    }

    fn statement(&self) -> &'static str {
        "every member of the leader's local ISR holds its records below the HW"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::REPLICAS_DISAGREED,
            prevention: Prevention::Loss,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        isr_holds_leader_records(input, self.name(), IsrKind::LeaderLocal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    #[test]
    fn a_local_isr_member_missing_a_record_below_the_hw_is_a_violation() {
        // The controller already dropped broker-1, but the leader still counts it as in sync.
        let snap = SnapshotBuilder::new(0)
            .controller_isr(&[0])
            .leader(0, 1, 2, &[0, 1], &[(0, 10, 1), (1, 11, 1)])
            .follower(1, 1, &[(0, 10, 1)])
            .build();
        let v = check_snapshots(&WeakIsr, &[], std::slice::from_ref(&snap));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "weak-isr");
        assert!(
            v[0].message
                .contains("broker-1, in its local ISR [broker-0, broker-1], lacks offset 1"),
            "{}",
            v[0].message
        );
        // strong-isr judges the controller's ISR, which is fine here.
        assert!(check_snapshots(&super::super::strong_isr::StrongIsr, &[], &[snap]).is_empty());
    }

    #[test]
    fn a_local_isr_holding_the_prefix_passes() {
        let snap = SnapshotBuilder::new(0)
            .controller_isr(&[0, 1])
            .leader(0, 1, 2, &[0, 1], &[(0, 10, 1), (1, 11, 1), (2, 12, 1)])
            .follower(1, 1, &[(0, 10, 1), (1, 11, 1)])
            .build();
        assert!(check_snapshots(&WeakIsr, &[], &[snap]).is_empty());
    }
}

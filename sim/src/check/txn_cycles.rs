//! `G1c` and `G0`: dependency cycles among committed transactions, Elle-style.
//!
//! **Graph.** The nodes are the committed (`ok`) transactions of the history. Edges:
//! * **wr** `T1 → T2`: `T2`'s `poll` read a value `T1` sent (`T2` observed `T1`'s write);
//! * **ww** `T1 → T2`: in a partition's version order (every (offset, value) an `ok` send or an
//!   `ok` poll revealed, in offset order), `T1`'s value is immediately followed by `T2`'s;
//! * **process** `T1 → T2`: the same process committed `T1`, then `T2` next;
//! * **realtime** `T1 → T2`: `T1` completed before `T2` began (Elle's realtime graph: each
//!   transaction gets an edge from every transaction on the frontier of those completed before
//!   its invoke, which implies the rest transitively).
//!
//! The strongly connected components of the graph are found with Tarjan's algorithm, and in
//! each the shortest cycle by breadth-first search.
//!
//! * **`G1c`** (circular information flow, Adya): a cycle of wr edges (with process and
//!   realtime edges, which alone never form a cycle). It fails: a transaction that observed
//!   another's write cannot also precede it, under read_committed or any isolation that reads
//!   only committed data (KIP-98's atomic, committed-only visibility). Jepsen found it in
//!   Redpanda 21.10.1 (issue #3036).
//! * **`G0`** here: a cycle that needs ww edges. Reported (in the check's notes) but allowed:
//!   Kafka transactions do not order their writes across partitions, so transactional writes
//!   interleave in the logs; Jepsen's Kafka test always allows G0, and allows G1c only when
//!   the cycle needs ww dependencies (GROUPS-AND-TRANSACTIONS.md B3).
//!
//! **Source.** Elle (Kingsbury and Alvaro, "Elle: Inferring Isolation Anomalies from
//! Experimental Observations", VLDB 2020) and Jepsen's Kafka workload
//! (`jepsen/src/jepsen/tests/kafka.clj`, `:ww-deps`, `analysis`).
//!
//! **What is allowed.** Aborted and unknown transactions are not nodes (Elle likewise infers
//! dependencies from committed transactions). At most [`MAX_STARTS`] start nodes are searched
//! per component, so a cycle reported is a shortest one found, not always the shortest.

use super::lesson::{Lesson, Prevention};
use super::txn::{self, txns, Txn};
use super::{observations, violation, CheckInput, Checker, Violation};
use ksim_model::event::OpType;
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A cycle: its edges in order, as (from, to, edge).
pub(crate) type Cycle<'e> = Vec<(usize, usize, &'e Edge)>;

/// A breadth-first search state: (node, whether a ww edge was used on the way).
type Bfs = (usize, bool);

/// At most this many nodes of one component are tried as the start of a shortest cycle.
pub const MAX_STARTS: usize = 200;

/// Why one transaction precedes another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Edge {
    /// The target read `value`, which the source wrote at `offset` of `tp`.
    Wr {
        tp: TopicPartition,
        offset: Offset,
        value: u64,
    },
    /// The same process ran the target next.
    Process,
    /// The source completed before the target began.
    Realtime,
    /// In `tp`, the source's `value` at `offset` is followed by the target's `next` at
    /// `next_offset`.
    Ww {
        tp: TopicPartition,
        offset: Offset,
        value: u64,
        next_offset: Offset,
        next: u64,
    },
}

impl Edge {
    fn is_ww(&self) -> bool {
        matches!(self, Edge::Ww { .. })
    }

    /// How `from` leads to `to`, e.g. `T1 wrote value 5 to events-0@3, read by T2`.
    fn describe(&self, from: &str, to: &str) -> String {
        match self {
            Edge::Wr { tp, offset, value } => {
                format!("{from} wrote value {value} to {tp}@{offset}, read by {to}")
            }
            Edge::Process => format!("{from} was followed on the same process by {to}"),
            Edge::Realtime => format!("{from} completed before {to} began"),
            Edge::Ww {
                tp,
                offset,
                value,
                next_offset,
                next,
            } => format!(
                "{from} wrote value {value} to {tp}@{offset}, followed by {to}'s value {next} at \
                 {tp}@{next_offset}"
            ),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Edge::Wr { .. } => "wr",
            Edge::Process => "process",
            Edge::Realtime => "realtime",
            Edge::Ww { .. } => "ww",
        }
    }
}

/// The dependency graph: nodes are indexes into the committed transactions; per (from, to),
/// every reason, strongest first (wr, process, realtime, ww).
pub(crate) struct Graph<'a> {
    pub nodes: Vec<Txn<'a>>,
    pub edges: BTreeMap<(usize, usize), BTreeSet<Edge>>,
}

impl<'a> Graph<'a> {
    /// Builds the graph of the history's committed transactions.
    pub fn of(input: &CheckInput<'a>) -> Graph<'a> {
        let nodes: Vec<Txn<'a>> = txns(input.history)
            .into_iter()
            .filter(|t| t.outcome == OpType::Ok)
            .collect();
        let mut g = Graph {
            nodes,
            edges: BTreeMap::new(),
        };
        let mut writer: BTreeMap<u64, usize> = BTreeMap::new();
        for (i, t) in g.nodes.iter().enumerate() {
            for (_, v, _) in &t.sends {
                writer.entry(*v).or_insert(i);
            }
        }
        let add = |edges: &mut BTreeMap<(usize, usize), BTreeSet<Edge>>, a, b, e| {
            if a != b {
                edges.entry((a, b)).or_default().insert(e);
            }
        };
        // wr
        for (j, t) in g.nodes.iter().enumerate() {
            for (tp, offset, value) in &t.polls {
                if let Some(&i) = writer.get(value) {
                    let e = Edge::Wr {
                        tp: (*tp).clone(),
                        offset: *offset,
                        value: *value,
                    };
                    add(&mut g.edges, i, j, e);
                }
            }
        }
        // ww: adjacent known offsets of each partition.
        let mut order: BTreeMap<TopicPartition, BTreeMap<Offset, u64>> = BTreeMap::new();
        for o in observations(input.history) {
            order
                .entry(o.tp)
                .or_default()
                .entry(o.offset)
                .or_insert(o.value);
        }
        for (tp, offsets) in &order {
            let list: Vec<(&Offset, &u64)> = offsets.iter().collect();
            for pair in list.windows(2) {
                let ((o1, v1), (o2, v2)) = (pair[0], pair[1]);
                if let (Some(&a), Some(&b)) = (writer.get(v1), writer.get(v2)) {
                    let e = Edge::Ww {
                        tp: tp.clone(),
                        offset: *o1,
                        value: *v1,
                        next_offset: *o2,
                        next: *v2,
                    };
                    add(&mut g.edges, a, b, e);
                }
            }
        }
        // process: each process's committed transactions in completion order.
        let mut by_process: BTreeMap<NodeId, Vec<(u64, usize)>> = BTreeMap::new();
        for (i, t) in g.nodes.iter().enumerate() {
            let end = t.completion.map_or(u64::MAX, |c| c.index);
            by_process.entry(t.process()).or_default().push((end, i));
        }
        for list in by_process.values_mut() {
            list.sort();
            for pair in list.windows(2) {
                add(&mut g.edges, pair[0].1, pair[1].1, Edge::Process);
            }
        }
        // realtime: Elle's frontier of completed transactions.
        let mut at_invoke: BTreeMap<u64, usize> = BTreeMap::new();
        let mut at_completion: BTreeMap<u64, usize> = BTreeMap::new();
        for (i, t) in g.nodes.iter().enumerate() {
            at_invoke.insert(t.invoke.index, i);
            if let Some(c) = t.completion {
                at_completion.insert(c.index, i);
            }
        }
        let mut frontier: BTreeSet<usize> = BTreeSet::new();
        let mut preds: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for e in input.history {
            if let Some(&i) = at_invoke.get(&e.index) {
                preds.insert(i, frontier.clone());
                for &p in &frontier {
                    add(&mut g.edges, p, i, Edge::Realtime);
                }
            }
            if let Some(&i) = at_completion.get(&e.index) {
                if let Some(p) = preds.get(&i) {
                    for x in p {
                        frontier.remove(x);
                    }
                }
                frontier.insert(i);
            }
        }
        g
    }

    /// The successors of `n` along edges `allowed` accepts, once per edge (strongest first).
    fn successors(&self, n: usize, allowed: &dyn Fn(&Edge) -> bool) -> Vec<(usize, &Edge)> {
        self.edges
            .range((n, 0)..(n + 1, 0))
            .flat_map(|((_, to), es)| es.iter().filter(|e| allowed(e)).map(|e| (*to, e)))
            .collect()
    }

    /// Tarjan's strongly connected components of the subgraph of edges `allowed` accepts, each
    /// with more than one node, in order of their smallest node.
    pub fn components(&self, allowed: &dyn Fn(&Edge) -> bool) -> Vec<Vec<usize>> {
        let n = self.nodes.len();
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next = 0;
        let mut out = Vec::new();
        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            // Iterative DFS: (node, its successors, position in them).
            let mut work: Vec<(usize, Vec<usize>, usize)> = Vec::new();
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            let succ = |v| {
                self.successors(v, allowed)
                    .into_iter()
                    .map(|(w, _)| w)
                    .collect()
            };
            work.push((root, succ(root), 0));
            while let Some((v, ws, pos)) = work.last_mut() {
                let v = *v;
                if *pos < ws.len() {
                    let w = ws[*pos];
                    *pos += 1;
                    if index[w] == usize::MAX {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        work.push((w, succ(w), 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                work.pop();
                if let Some((parent, _, _)) = work.last() {
                    low[*parent] = low[*parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 {
                        comp.sort();
                        out.push(comp);
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// A shortest cycle inside `comp` along edges `allowed` accepts, which uses a ww edge if
    /// `need_ww`: the edges in order, as (from, to, edge). `None` if there is none.
    pub fn shortest_cycle(
        &self,
        comp: &[usize],
        allowed: &dyn Fn(&Edge) -> bool,
        need_ww: bool,
    ) -> Option<Cycle<'_>> {
        let members: BTreeSet<usize> = comp.iter().copied().collect();
        let mut best: Option<Cycle> = None;
        for &start in comp.iter().take(MAX_STARTS) {
            // BFS over (node, used a ww edge yet).
            let mut parent: BTreeMap<Bfs, (Bfs, &Edge)> = BTreeMap::new();
            let mut queue = VecDeque::from([(start, false)]);
            let mut seen = BTreeSet::from([(start, false)]);
            let mut found = None;
            'bfs: while let Some((v, used)) = queue.pop_front() {
                for (w, e) in self.successors(v, allowed) {
                    if !members.contains(&w) {
                        continue;
                    }
                    let state = (w, used || e.is_ww());
                    if w == start && (state.1 || !need_ww) {
                        found = Some(((v, used), e));
                        break 'bfs;
                    }
                    if w != start && seen.insert(state) {
                        parent.insert(state, ((v, used), e));
                        queue.push_back(state);
                    }
                }
            }
            let Some((mut at, last)) = found else {
                continue;
            };
            let mut cycle = vec![(at.0, start, last)];
            while at != (start, false) {
                let (prev, e) = parent[&at];
                cycle.push((prev.0, at.0, e));
                at = prev;
            }
            cycle.reverse();
            if best.as_ref().is_none_or(|b| cycle.len() < b.len()) {
                best = Some(cycle);
            }
        }
        best
    }

    /// The cycle as a readable chain, the transactions named T1, T2, ... and described after.
    pub fn describe(&self, cycle: &[(usize, usize, &Edge)]) -> String {
        let mut names: BTreeMap<usize, String> = BTreeMap::new();
        for (from, _, _) in cycle {
            let k = names.len() + 1;
            names.entry(*from).or_insert_with(|| format!("T{k}"));
        }
        let chain: Vec<String> = cycle
            .iter()
            .map(|(a, b, e)| e.describe(&names[a], &names[b]))
            .collect();
        let legend: Vec<String> = cycle
            .iter()
            .map(|(a, _, _)| format!("{} = {}", names[a], self.nodes[*a].describe()))
            .collect();
        format!("{} (where {})", chain.join("; "), legend.join(", "))
    }

    /// The cycle as data.
    pub fn to_json(&self, cycle: &[(usize, usize, &Edge)]) -> serde_json::Value {
        json!(cycle
            .iter()
            .map(|(a, b, e)| json!({
                "from": self.nodes[*a].to_json(),
                "to": self.nodes[*b].to_json(),
                "edge": e.kind(),
                "why": e.describe("from", "to"),
            }))
            .collect::<Vec<_>>())
    }
}

fn not_ww(e: &Edge) -> bool {
    !e.is_ww()
}

fn any_edge(_: &Edge) -> bool {
    true
}

/// The G1c cycles, one per component of the graph without ww edges: (sentence, data).
fn g1c(input: &CheckInput) -> Vec<(String, serde_json::Value)> {
    let g = Graph::of(input);
    g.components(&not_ww)
        .iter()
        .filter_map(|comp| {
            let cycle = g.shortest_cycle(comp, &not_ww, false)?;
            Some((
                format!(
                    "G1c, circular information flow among {} committed transactions: {}",
                    comp.len(),
                    g.describe(&cycle)
                ),
                json!({ "component_size": comp.len(), "cycle": g.to_json(&cycle) }),
            ))
        })
        .collect()
}

/// The cycles that need ww edges, one per component of the whole graph: (sentence, data).
fn g0(input: &CheckInput) -> Vec<(String, serde_json::Value)> {
    let g = Graph::of(input);
    g.components(&any_edge)
        .iter()
        .filter_map(|comp| {
            let cycle = g.shortest_cycle(comp, &any_edge, true)?;
            Some((
                format!(
                    "a write cycle (G0, allowed: Kafka transactions interleave their writes) among \
                     {} committed transactions: {}",
                    comp.len(),
                    g.describe(&cycle)
                ),
                json!({ "component_size": comp.len(), "cycle": g.to_json(&cycle) }),
            ))
        })
        .collect()
}

/// `G1c`: see the module documentation.
pub struct G1c;

impl Checker for G1c {
    fn name(&self) -> &'static str {
        "G1c"
    }

    fn statement(&self) -> &'static str {
        "no cycle of committed transactions each reading what the previous one wrote"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "Committed transactions formed a cycle of information flow (G1c): each \
                    read what the previous one wrote, around to the first, so no order of the \
                    transactions explains what they read. read_committed readers can see only \
                    committed, hence already ordered, writes.",
            prevention: Prevention::ReadCommitted,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        txn::without_txns(input, "there is no transaction to order")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        violation(self.name(), None, g1c(input), serde_json::Map::new())
    }
}

/// `G0`: reported in the notes, never a violation (see the module documentation).
pub struct G0;

impl Checker for G0 {
    fn name(&self) -> &'static str {
        "G0"
    }

    fn statement(&self) -> &'static str {
        "write cycles among committed transactions are reported (allowed, as in Jepsen's Kafka test)"
    }

    fn lesson(&self) -> Lesson {
        Lesson::UNRECORDED
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        txn::without_txns(input, "there is no transaction to order")
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let cycles = g0(input);
        let n = cycles.len();
        cycles
            .into_iter()
            .take(5)
            .map(|(s, _)| s)
            .chain((n > 5).then(|| format!("{} more write cycles not listed", n - 5)))
            .collect()
    }

    fn check(&self, _input: &CheckInput) -> Vec<Violation> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn a_cycle_of_reads_is_g1c() {
        // Two concurrent processors: T1 reads T2's write and T2 reads T1's.
        let mut h = HistoryBuilder::default();
        let (a, b) = (NodeId::Consumer(10), NodeId::Consumer(11));
        let t1 = h.txn_begin(a, "a");
        let t2 = h.txn_begin(b, "b");
        h.txn_end(
            a,
            t1,
            OpType::Ok,
            "a",
            (1, 0),
            vec![tsend(&tp(0), 1, 0), tpoll(&tp(1), &[(0, 2)])],
            None,
            &[],
        );
        h.txn_end(
            b,
            t2,
            OpType::Ok,
            "b",
            (2, 0),
            vec![tsend(&tp(1), 2, 0), tpoll(&tp(0), &[(0, 1)])],
            None,
            &[],
        );
        let v = check_history(&G1c, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "G1c, circular information flow among 2 committed transactions: T1 wrote value 1 to \
             events-0@0, read by T2; T2 wrote value 2 to events-1@0, read by T1 (where T1 = \
             consumer-10's transaction 0 (a, producer id 1, epoch 0, t=0..20 ms, committed), \
             T2 = consumer-11's transaction 1 (b, producer id 2, epoch 0, t=10..30 ms, \
             committed))"
        );
        assert_eq!(v[0].details["anomalies"][0]["cycle"][0]["edge"], "wr");
    }

    #[test]
    fn interleaved_writes_are_an_allowed_g0_and_ordered_reads_pass() {
        // T1 and T2 run concurrently; their writes interleave in two partitions: T1 before T2
        // in events-0, T2 before T1 in events-1. T3 later reads both.
        let mut h = HistoryBuilder::default();
        let (a, b) = (NodeId::Producer(0), NodeId::Producer(1));
        let t1 = h.txn_begin(a, "a");
        let t2 = h.txn_begin(b, "b");
        h.txn_end(
            a,
            t1,
            OpType::Ok,
            "a",
            (1, 0),
            vec![tsend(&tp(0), 1, 0), tsend(&tp(1), 3, 1)],
            None,
            &[],
        );
        h.txn_end(
            b,
            t2,
            OpType::Ok,
            "b",
            (2, 0),
            vec![tsend(&tp(0), 2, 1), tsend(&tp(1), 4, 0)],
            None,
            &[],
        );
        let c = NodeId::Consumer(10);
        let t3 = h.txn_begin(c, "c");
        h.txn_end(
            c,
            t3,
            OpType::Ok,
            "c",
            (3, 0),
            vec![tpoll(&tp(0), &[(0, 1), (1, 2)])],
            None,
            &[],
        );
        assert!(check_history(&G1c, &h.entries).is_empty());
        let logs = BTreeMap::new();
        let input = CheckInput {
            history: &h.entries,
            events: &[],
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        };
        let notes = G0.notes(&input);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "a write cycle (G0, allowed: Kafka transactions interleave their writes) among 2 \
                 committed transactions: T1 wrote value 1 to events-0@0, followed by T2's value 2 \
                 at events-0@1; T2 wrote value 4 to events-1@0, followed by T1's value 3 at \
                 events-1@1"
            ),
            "{}",
            notes[0]
        );
        assert!(G0.check(&input).is_empty());
    }
}

//! `ksim assign --strategy S --topic T:N ... --member ID=T1,T2 ... [--owned ID=T-P,...]
//! [--instance ID=INSTANCE_ID]`: "who gets which partition?" for a consumer group, answered by
//! the same assignors the simulated group leader runs (`ksim_model::consumer::assignor`).
//!
//! # Input
//! - `--strategy S`: one assignor, by Kafka's class name
//!   (`org.apache.kafka.clients.consumer.RangeAssignor`, with or without the package) or its
//!   protocol name (`range`, `roundrobin`, `sticky`, `cooperative-sticky`), as in
//!   `partition.assignment.strategy` (SCENARIOS.md "Consumer groups"). One name, not a list:
//!   a group runs one assignor per rebalance.
//! - `--topic T:N` (repeatable, at least one): topic `T` (Kafka's topic name rules) has `N`
//!   partitions (1 to 2^31-1). A topic nobody subscribes to is ignored, as in Kafka.
//! - `--member ID=T1,T2` (repeatable, at least one): a member and the topics it subscribes to
//!   (each one of the `--topic`s). `ID` is the member id; Kafka orders dynamic members by it.
//! - `--owned ID=T-P,...` (repeatable; lists of one member add up): the partitions the member
//!   owns from the previous generation (KIP-429's `ownedPartitions`, the sticky assignors'
//!   memory). Every claim is taken from one previous generation (generation 1), so a
//!   partition two members claim is, as in Kafka, kept by neither. Range and round robin ignore
//!   it (they are not sticky).
//! - `--instance ID=INSTANCE_ID` (repeatable): the member is static with that
//!   `group.instance.id` (KIP-345). Range and round robin order static members first, by
//!   instance id, then dynamic members by member id (`AbstractPartitionAssignor.MemberInfo`).
//!
//! # Output
//! One `MEMBER<TAB>TOPIC-PARTITION` line per assigned partition on stdout: members **in the
//! order given by `--member`** (the order of the command line, not Kafka's member order, which
//! decides the assignment but not the printing), each member's partitions by topic then
//! partition number. A member that gets nothing prints no line. Notes for people go to stderr:
//! members left without a partition, `--owned` ignored by a non-sticky assignor, claims that
//! were dropped, and for `cooperative-sticky` the partitions withheld from this rebalance
//! because their previous owner must revoke them first (KIP-429) with the member the
//! follow-up rebalance gives them to.
//!
//! # Errors
//! Every bad input is a message (then exit status 2 from the binary), never a panic: an unknown
//! strategy (Kafka's `ClassNotFoundException` words and the names ksim has), a malformed
//! `--topic`/`--member`/`--owned`/`--instance`, a topic given twice, a member given twice, a
//! member subscribing to a topic no `--topic` gives, an owned partition that does not exist,
//! `--owned`/`--instance` for an unknown member, and one instance id on two members.

use crate::scenario::validate_topic_name;
use ksim_model::consumer::assignor::{
    assignor_by_name, class_not_found, PartitionAssignor, RebalanceProtocol, Subscription,
};
use ksim_model::types::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

/// The generation every `--owned` claim is taken from (one previous generation).
const OWNED_GENERATION: i32 = 1;

/// The arguments of `ksim assign`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct AssignArgs {
    /// The assignor: range, roundrobin, sticky, cooperative-sticky, or Kafka's class name
    /// (org.apache.kafka.clients.consumer.RangeAssignor, RoundRobinAssignor, StickyAssignor,
    /// CooperativeStickyAssignor).
    #[arg(long, value_name = "S")]
    pub strategy: String,
    /// A topic and its partition count, e.g. events:6 (repeatable).
    #[arg(
        long = "topic",
        value_name = "T:N",
        required = true,
        allow_hyphen_values = true
    )]
    pub topics: Vec<String>,
    /// A member and the topics it subscribes to, e.g. c1=events,audit (repeatable; printed in
    /// this order).
    #[arg(
        long = "member",
        value_name = "ID=T1,T2",
        required = true,
        allow_hyphen_values = true
    )]
    pub members: Vec<String>,
    /// Partitions a member owns from the previous generation, e.g. c1=events-0,events-3
    /// (sticky and cooperative-sticky keep them when balance allows).
    #[arg(long = "owned", value_name = "ID=T-P,...", allow_hyphen_values = true)]
    pub owned: Vec<String>,
    /// Make a member static with this group.instance.id, e.g. c1=instance-a (KIP-345).
    #[arg(
        long = "instance",
        value_name = "ID=INSTANCE_ID",
        allow_hyphen_values = true
    )]
    pub instances: Vec<String>,
}

/// A parsed, checked `ksim assign` question.
pub struct Group {
    /// The assignor `--strategy` names.
    pub assignor: Box<dyn PartitionAssignor>,
    /// Topic → partition count (`--topic`).
    pub partitions_per_topic: BTreeMap<String, i32>,
    /// One subscription per `--member`, in the order given.
    pub subscriptions: Vec<Subscription>,
}

/// What `ksim assign` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `(member, partition)` in printing order (see the module docs).
    pub lines: Vec<(String, TopicPartition)>,
    /// Notes for stderr, each one line without the `note: ` prefix.
    pub notes: Vec<String>,
}

impl Answer {
    /// The stdout text: `MEMBER<TAB>TOPIC-PARTITION\n` per line.
    pub fn stdout(&self) -> String {
        self.lines
            .iter()
            .map(|(m, tp)| format!("{m}\t{tp}\n"))
            .collect()
    }
}

/// Splits `value` of `--flag` at the first `=` into a non-empty member id and the rest.
fn member_and_rest<'a>(
    flag: &str,
    value: &'a str,
    shape: &str,
) -> Result<(&'a str, &'a str), String> {
    let (id, rest) = value
        .split_once('=')
        .ok_or_else(|| format!("{flag} {value:?}: expected {shape}"))?;
    let id = id.trim();
    if id.is_empty() {
        return Err(format!(
            "{flag} {value:?}: the member id before '=' is empty (expected {shape})"
        ));
    }
    Ok((id, rest))
}

/// `T:N` of `--topic`.
fn parse_topic(value: &str) -> Result<(String, i32), String> {
    let shape = "TOPIC:PARTITIONS, e.g. events:6";
    let (topic, n) = value
        .rsplit_once(':')
        .ok_or_else(|| format!("--topic {value:?}: expected {shape}"))?;
    let topic = topic.trim();
    validate_topic_name(topic).map_err(|e| format!("--topic {value:?}: {e}"))?;
    let n: i64 = n.trim().parse().map_err(|_| {
        format!(
            "--topic {value:?}: the partition count {n:?} is not a whole number (expected {shape})"
        )
    })?;
    if n < 1 {
        return Err(format!(
            "--topic {value:?}: a topic has at least one partition"
        ));
    }
    let n = i32::try_from(n).map_err(|_| {
        format!(
            "--topic {value:?}: at most {} partitions (a Java int)",
            i32::MAX
        )
    })?;
    Ok((topic.to_string(), n))
}

/// `T-P` of an `--owned` list, checked against the topics.
fn parse_owned_partition(
    value: &str,
    item: &str,
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Result<TopicPartition, String> {
    let item = item.trim();
    let (topic, p) = item.rsplit_once('-').ok_or_else(|| {
        format!("--owned {value:?}: {item:?} is not TOPIC-PARTITION, e.g. events-0")
    })?;
    let p: i32 = p.parse().map_err(|_| {
        format!("--owned {value:?}: {item:?} is not TOPIC-PARTITION (the partition after the last '-' is not a whole number)")
    })?;
    let Some(&count) = partitions_per_topic.get(topic) else {
        return Err(format!(
            "--owned {value:?}: no partition {item}: no --topic gives topic {topic:?} (topics: {})",
            topic_list(partitions_per_topic)
        ));
    };
    if p < 0 || p >= count {
        return Err(format!(
            "--owned {value:?}: no partition {item}: topic {topic} has {count} partition{} ({topic}-0 to {topic}-{})",
            if count == 1 { "" } else { "s" },
            count - 1
        ));
    }
    Ok(TopicPartition::new(topic, p))
}

fn topic_list(partitions_per_topic: &BTreeMap<String, i32>) -> String {
    partitions_per_topic
        .iter()
        .map(|(t, n)| format!("{t}:{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A member id is printed before a tab, one per line.
fn check_member_id(flag: &str, value: &str, id: &str) -> Result<(), String> {
    if id.contains(['\t', '\n', '\r']) {
        return Err(format!(
            "{flag} {value:?}: a member id cannot hold a tab or a line break (it is printed as MEMBER<TAB>TOPIC-PARTITION)"
        ));
    }
    Ok(())
}

/// Parses and checks the arguments (see the module docs for the rules and the errors).
pub fn parse(args: &AssignArgs) -> Result<Group, String> {
    if args.strategy.contains(',') {
        return Err(format!(
            "--strategy {:?}: one assignor, not a list (a group runs the one assignor its members agree on in each rebalance)",
            args.strategy
        ));
    }
    let assignor =
        assignor_by_name(&args.strategy).ok_or_else(|| class_not_found(&args.strategy))?;

    let mut partitions_per_topic = BTreeMap::new();
    for value in &args.topics {
        let (topic, n) = parse_topic(value)?;
        if partitions_per_topic.insert(topic.clone(), n).is_some() {
            return Err(format!("--topic {value:?}: topic {topic} is given twice"));
        }
    }

    let mut subscriptions: Vec<Subscription> = Vec::new();
    for value in &args.members {
        let shape = "MEMBER=TOPIC[,TOPIC...], e.g. c1=events";
        let (id, rest) = member_and_rest("--member", value, shape)?;
        check_member_id("--member", value, id)?;
        if subscriptions.iter().any(|s| s.member_id == id) {
            return Err(format!("--member {value:?}: member {id} is given twice"));
        }
        let mut topics: Vec<String> = Vec::new();
        for t in rest.split(',') {
            let t = t.trim();
            if t.is_empty() {
                return Err(format!(
                    "--member {value:?}: an empty topic name in the list (expected {shape})"
                ));
            }
            if !partitions_per_topic.contains_key(t) {
                return Err(format!(
                    "--member {value:?}: {id} subscribes to topic {t:?}, which no --topic gives (topics: {})",
                    topic_list(&partitions_per_topic)
                ));
            }
            if !topics.iter().any(|x| x == t) {
                topics.push(t.to_string());
            }
        }
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        subscriptions.push(Subscription::new(id, &topic_refs));
    }

    for value in &args.owned {
        let (id, rest) = member_and_rest("--owned", value, "MEMBER=TOPIC-P[,TOPIC-P...]")?;
        let Some(i) = subscriptions.iter().position(|s| s.member_id == id) else {
            return Err(format!("--owned {value:?}: no --member {id}"));
        };
        for item in rest.split(',') {
            let tp = parse_owned_partition(value, item, &partitions_per_topic)?;
            let s = &mut subscriptions[i];
            if s.owned_partitions.contains(&tp) {
                return Err(format!("--owned {value:?}: {id} lists {tp} twice"));
            }
            s.owned_partitions.push(tp);
            s.generation = OWNED_GENERATION;
        }
    }

    let mut instance_of: BTreeMap<String, String> = BTreeMap::new();
    for value in &args.instances {
        let (id, instance) = member_and_rest("--instance", value, "MEMBER=INSTANCE_ID")?;
        let instance = instance.trim();
        let Some(i) = subscriptions.iter().position(|s| s.member_id == id) else {
            return Err(format!("--instance {value:?}: no --member {id}"));
        };
        if instance.is_empty() {
            return Err(format!(
                "--instance {value:?}: the group.instance.id after '=' is empty"
            ));
        }
        if subscriptions[i].group_instance_id.is_some() {
            return Err(format!(
                "--instance {value:?}: member {id} already has an instance id"
            ));
        }
        if let Some(other) = instance_of.get(instance) {
            return Err(format!(
                "--instance {value:?}: group.instance.id {instance} is already {other}'s: it is unique in a group (the coordinator fences a second member with it: FENCED_INSTANCE_ID, KIP-345)"
            ));
        }
        instance_of.insert(instance.to_string(), id.to_string());
        subscriptions[i].group_instance_id = Some(instance.to_string());
    }

    Ok(Group {
        assignor,
        partitions_per_topic,
        subscriptions,
    })
}

/// Runs the assignor on `group` and words the answer (see the module docs).
pub fn answer(group: &Group) -> Answer {
    let name = group.assignor.name();
    let assignment = group
        .assignor
        .assign(&group.partitions_per_topic, &group.subscriptions);
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let sticky = matches!(name, "sticky" | "cooperative-sticky");
    let any_owned = group
        .subscriptions
        .iter()
        .any(|s| !s.owned_partitions.is_empty());
    if any_owned && !sticky {
        notes.push(format!(
            "--owned is ignored by {name}: it is not sticky (the eager protocol revokes every partition before a rebalance, and {name} assigns from scratch)"
        ));
    }
    if sticky {
        notes.extend(dropped_claims(group));
    }
    for s in &group.subscriptions {
        let list = assignment.get(&s.member_id).map_or(&[][..], Vec::as_slice);
        if list.is_empty() {
            notes.push(format!("{} gets no partition", s.member_id));
        }
        lines.extend(list.iter().map(|tp| (s.member_id.clone(), tp.clone())));
    }
    let cooperative = group
        .assignor
        .supported_protocols()
        .first()
        .is_some_and(|p| *p == RebalanceProtocol::Cooperative);
    if cooperative {
        notes.extend(withheld(group, &assignment));
    }
    Answer { lines, notes }
}

/// Sticky claims the assignor cannot keep: a topic the member does not subscribe to, or a
/// partition two members claim in the same generation.
fn dropped_claims(group: &Group) -> Vec<String> {
    let mut notes = Vec::new();
    let mut claimants: BTreeMap<&TopicPartition, Vec<&str>> = BTreeMap::new();
    for s in &group.subscriptions {
        for tp in &s.owned_partitions {
            if s.topics.iter().any(|t| *t == tp.topic) {
                claimants.entry(tp).or_default().push(&s.member_id);
            } else {
                notes.push(format!(
                    "{} owned {tp} but does not subscribe to {}: the claim is dropped",
                    s.member_id, tp.topic
                ));
            }
        }
    }
    for (tp, members) in claimants {
        if members.len() > 1 {
            notes.push(format!(
                "{tp} is claimed by {} in the same generation: as in Kafka, neither keeps it",
                members.join(" and ")
            ));
        }
    }
    notes
}

/// Under the cooperative protocol, the partitions some member still owns that this rebalance
/// gives to nobody: their owner revokes them, rejoins, and the follow-up rebalance (run here
/// with every member owning what it got) places them.
fn withheld(group: &Group, first: &BTreeMap<String, Vec<TopicPartition>>) -> Vec<String> {
    let assigned: BTreeSet<&TopicPartition> = first.values().flatten().collect();
    let mut owners: BTreeMap<&TopicPartition, Vec<&str>> = BTreeMap::new();
    for s in &group.subscriptions {
        for tp in &s.owned_partitions {
            if !assigned.contains(tp) {
                owners.entry(tp).or_default().push(&s.member_id);
            }
        }
    }
    if owners.is_empty() {
        return Vec::new();
    }
    let next: Vec<Subscription> = group
        .subscriptions
        .iter()
        .map(|s| Subscription {
            owned_partitions: first.get(&s.member_id).cloned().unwrap_or_default(),
            generation: OWNED_GENERATION + 1,
            ..s.clone()
        })
        .collect();
    let second = group.assignor.assign(&group.partitions_per_topic, &next);
    let new_owner = |tp: &TopicPartition| {
        second
            .iter()
            .find(|(_, list)| list.contains(tp))
            .map(|(m, _)| m.as_str())
    };
    owners
        .into_iter()
        .map(|(tp, from)| {
            let then = match new_owner(tp) {
                Some(m) => format!("the follow-up rebalance gives it to {m}"),
                None => "no member subscribing to its topic takes it".to_string(),
            };
            format!(
                "{tp} is withheld from this rebalance: {} must revoke it first (KIP-429); {then}",
                from.join(" and ")
            )
        })
        .collect()
}

/// `ksim assign`: prints the answer (stdout) and its notes (stderr). `Err` is bad input.
pub fn cmd(args: AssignArgs) -> Result<ExitCode, String> {
    let group = parse(&args)?;
    let answer = answer(&group);
    let mut out = std::io::stdout().lock();
    out.write_all(answer.stdout().as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write standard output: {e}"))?;
    for note in &answer.notes {
        eprintln!("note: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(strategy: &str, topics: &[&str], members: &[&str]) -> AssignArgs {
        AssignArgs {
            strategy: strategy.into(),
            topics: topics.iter().map(|s| s.to_string()).collect(),
            members: members.iter().map(|s| s.to_string()).collect(),
            owned: Vec::new(),
            instances: Vec::new(),
        }
    }

    fn err(a: &AssignArgs) -> String {
        parse(a).err().expect("bad input")
    }

    #[test]
    fn members_print_in_the_order_given() {
        let a = args("range", &["t:3"], &["zed=t", "amy=t"]);
        let answer = answer(&parse(&a).unwrap());
        // Kafka's order (member id) gives amy t-0, t-1; the printing keeps zed first.
        assert_eq!(answer.stdout(), "zed\tt-2\namy\tt-0\namy\tt-1\n");
        assert!(answer.notes.is_empty(), "{:?}", answer.notes);
    }

    #[test]
    fn topics_and_partitions_parse() {
        assert_eq!(parse_topic("my-topic:6"), Ok(("my-topic".into(), 6)));
        assert!(parse_topic("t")
            .unwrap_err()
            .contains("expected TOPIC:PARTITIONS"));
        assert!(parse_topic("t:0")
            .unwrap_err()
            .contains("at least one partition"));
        assert!(parse_topic("t:x")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(parse_topic("t:2147483648")
            .unwrap_err()
            .contains("a Java int"));
        assert!(parse_topic("a/b:1").unwrap_err().contains("is illegal"));
        let topics: BTreeMap<String, i32> = [("my-topic".to_string(), 2)].into();
        assert_eq!(
            parse_owned_partition("c=my-topic-1", "my-topic-1", &topics),
            Ok(TopicPartition::new("my-topic", 1))
        );
        assert!(parse_owned_partition("v", "my-topic-2", &topics)
            .unwrap_err()
            .contains("topic my-topic has 2 partitions (my-topic-0 to my-topic-1)"));
        assert!(parse_owned_partition("v", "my-topic", &topics)
            .unwrap_err()
            .contains("not a whole number"));
    }

    #[test]
    fn bad_members_and_flags() {
        let e = err(&args("fancy", &["t:1"], &["c=t"]));
        assert!(
            e.starts_with("fancy ClassNotFoundException exception occurred (ksim has: range"),
            "{e}"
        );
        assert!(err(&args("range,sticky", &["t:1"], &["c=t"])).contains("not a list"));
        assert!(err(&args("range", &["t:1", "t:2"], &["c=t"])).contains("given twice"));
        assert!(err(&args("range", &["t:1"], &["c"])).contains("expected MEMBER=TOPIC"));
        assert!(err(&args("range", &["t:1"], &["=t"])).contains("member id before '=' is empty"));
        assert!(err(&args("range", &["t:1"], &["c="])).contains("an empty topic name"));
        assert!(err(&args("range", &["t:1"], &["c=t", "c=t"])).contains("member c is given twice"));
        let e = err(&args("range", &["t:1"], &["c=u"]));
        assert!(
            e.contains("c subscribes to topic \"u\", which no --topic gives (topics: t:1)"),
            "{e}"
        );
        let mut a = args("sticky", &["t:2"], &["c=t"]);
        a.owned = vec!["d=t-0".into()];
        assert!(err(&a).contains("no --member d"));
        a.owned = vec!["c=t-2".into()];
        assert!(err(&a).contains("no partition t-2: topic t has 2 partitions"));
        a.owned = vec!["c=u-0".into()];
        assert!(err(&a).contains("no --topic gives topic \"u\""));
        a.owned = vec!["c=t-0,t-0".into()];
        assert!(err(&a).contains("lists t-0 twice"));
        a.owned = Vec::new();
        a.instances = vec!["c=".into()];
        assert!(err(&a).contains("group.instance.id after '=' is empty"));
        let mut a = args("range", &["t:2"], &["c=t", "d=t"]);
        a.instances = vec!["c=i".into(), "d=i".into()];
        assert!(err(&a).contains("FENCED_INSTANCE_ID"));
        a.instances = vec!["c=i".into(), "c=j".into()];
        assert!(err(&a).contains("already has an instance id"));
    }

    #[test]
    fn notes_say_what_the_assignment_does_not() {
        // Range ignores owned partitions; a member without partitions is named.
        let mut a = args("range", &["t:1"], &["c=t", "d=t"]);
        a.owned = vec!["d=t-0".into()];
        let ans = answer(&parse(&a).unwrap());
        assert_eq!(ans.stdout(), "c\tt-0\n");
        assert_eq!(ans.notes.len(), 2, "{:?}", ans.notes);
        assert!(ans.notes[0].starts_with("--owned is ignored by range"));
        assert_eq!(ans.notes[1], "d gets no partition");

        // Cooperative: c owned both partitions, d is new: t-1 moves in two rebalances.
        let mut a = args("cooperative-sticky", &["t:2"], &["c=t", "d=t"]);
        a.owned = vec!["c=t-0,t-1".into()];
        let ans = answer(&parse(&a).unwrap());
        assert_eq!(ans.stdout(), "c\tt-0\n");
        assert_eq!(
            ans.notes,
            [
                "d gets no partition",
                "t-1 is withheld from this rebalance: c must revoke it first (KIP-429); the follow-up rebalance gives it to d",
            ]
        );

        // Sticky (eager) moves it at once; a doubly claimed partition is kept by neither.
        let mut a = args("sticky", &["t:2", "u:1"], &["c=t", "d=t"]);
        a.owned = vec!["c=t-0,t-1".into(), "d=t-1,u-0".into()];
        let ans = answer(&parse(&a).unwrap());
        assert_eq!(ans.stdout(), "c\tt-0\nd\tt-1\n");
        assert_eq!(
            ans.notes,
            [
                "d owned u-0 but does not subscribe to u: the claim is dropped",
                "t-1 is claimed by c and d in the same generation: as in Kafka, neither keeps it",
            ]
        );
    }
}

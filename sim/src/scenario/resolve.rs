//! Raw to resolved: checks every table of a parsed file (Kafka settings through
//! `ksim_model::config`, topics, replica assignments, clients, expectations) and builds the
//! [`Scenario`].

use super::*;

pub(super) fn props_of(p: &Option<RawProps>) -> Properties {
    p.as_ref()
        .map(|m| {
            m.get_ref()
                .iter()
                .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses one config table with `f`, mapping errors to the table's location.
pub(super) fn config<T>(
    ctx: &Ctx<'_>,
    raw: &Option<RawProps>,
    path: &str,
    f: fn(&Properties) -> Result<T, ConfigError>,
) -> Result<(T, Properties), ScenarioError> {
    let props = props_of(raw);
    match f(&props) {
        Ok(c) => Ok((c, props)),
        Err(e) => Err(match raw {
            Some(r) => ctx.config_err(r, path, e),
            None => ctx.err(None, format!("{path}.{}", toml_key(&e.key)), e.message),
        }),
    }
}

/// Parses a `[[consumers]]` entry's config table. The entry's `group` is its `group.id`
/// (SCENARIOS.md "Consumer groups"), so it is in force while the table is parsed: Kafka's
/// constructor refuses `enable.auto.commit = true` only when there is no group id
/// (`KafkaConsumer`/`ConsumerConfig.maybeOverrideEnableAutoCommit`), and an entry with a
/// `group` has one. A `group.id` written in the table wins here; a contradiction with `group` is
/// refused by the caller. The returned properties are the table as written (without the
/// entry's `group`).
fn consumer_config(
    ctx: &Ctx<'_>,
    raw: &Option<RawProps>,
    path: &str,
    group: Option<&str>,
) -> Result<(ConsumerConfig, Properties), ScenarioError> {
    let written = props_of(raw);
    let mut props = written.clone();
    if let Some(g) = group {
        props
            .entry("group.id".to_string())
            .or_insert_with(|| PropValue::Str(g.to_string()));
    }
    match ConsumerConfig::from_properties(&props) {
        Ok(c) => Ok((c, written)),
        Err(e) => Err(match raw {
            Some(r) => ctx.config_err(r, path, e),
            None => ctx.err(None, format!("{path}.{}", toml_key(&e.key)), e.message),
        }),
    }
}

/// `[[consumers]] commit`: how the application commits (SCENARIOS.md "Consumer groups"). Only
/// with a `group.id` in the entry's config; the default is `auto` with one, and nothing to
/// commit without. `none` turns `enable.auto.commit` off (an explicit `true` contradicts it);
/// `auto` with an explicit `enable.auto.commit = false` would never commit and is refused.
fn resolve_commit(
    ctx: &Ctx<'_>,
    c: &RawConsumer,
    path: &str,
    config: &mut ConsumerConfig,
    properties: &Properties,
) -> Result<CommitMode, ScenarioError> {
    let key = format!("{path}.commit");
    let Some(raw) = &c.commit else {
        return Ok(CommitMode::Auto);
    };
    let Some(mode) = CommitMode::parse(raw.get_ref()) else {
        return Err(ctx.at(
            raw,
            key,
            format!(
                "unknown commit \"{}\": expected one of {}",
                raw.get_ref(),
                CommitMode::NAMES
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    if config.group_id.is_none() {
        return Err(ctx.at(
            raw,
            key,
            "commit needs a group: set \"group.id\" in this entry's config (offsets are committed for a group)",
        ));
    }
    let explicit = properties.contains_key("enable.auto.commit");
    match mode {
        CommitMode::None if explicit && config.enable_auto_commit => Err(ctx.at(
            raw,
            key,
            "commit = \"none\" never commits, but enable.auto.commit = true commits every auto.commit.interval.ms: drop one of them",
        )),
        CommitMode::None => {
            config.enable_auto_commit = false;
            Ok(mode)
        }
        CommitMode::Auto if !config.enable_auto_commit => Err(ctx.at(
            raw,
            key,
            "commit = \"auto\" relies on enable.auto.commit, which is false here: nothing would be committed (use commit = \"none\" for that)",
        )),
        _ => Ok(mode),
    }
}

/// Kafka's `Topic.validate`: `Err` with Kafka's message for an empty name, `.` or `..`, more
/// than 249 characters, or a character other than ASCII alphanumerics, `.`, `_` and `-`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// A `[[producers]]` entry's topics: `topic` or `topics` (SCENARIOS.md "Transactions and
/// exactly-once"), exactly one of them, every topic declared (`check_topic`), none twice, and
/// `topics` not empty. Errors point at the key (or at the entry's first key when neither is
/// given).
fn producer_topics(
    ctx: &Ctx<'_>,
    p: &RawProducer,
    path: &str,
    check_topic: &dyn Fn(&Spanned<String>, String) -> Result<(), ScenarioError>,
) -> Result<Vec<Spanned<String>>, ScenarioError> {
    match (&p.topic, &p.topics) {
        (Some(_), Some(list)) => Err(ctx.at(
            list,
            format!("{path}.topics"),
            "give either topic or topics, not both (topics = [...] lists every topic this entry writes)",
        )),
        (None, None) => Err(ctx.at(
            &p.rate_per_sec,
            path.to_string(),
            "names no topic: give topic = \"NAME\" or topics = [\"A\", \"B\"]",
        )),
        (Some(t), None) => {
            check_topic(t, format!("{path}.topic"))?;
            Ok(vec![t.clone()])
        }
        (None, Some(list)) => {
            let key = format!("{path}.topics");
            if list.get_ref().is_empty() {
                return Err(ctx.at(list, key, "topics must name at least one topic"));
            }
            let mut seen: Vec<&Spanned<String>> = Vec::new();
            for t in list.get_ref() {
                check_topic(t, key.clone())?;
                if seen.iter().any(|s| s.get_ref() == t.get_ref()) {
                    return Err(ctx.at(
                        t,
                        key,
                        format!("topic \"{}\" is listed twice", t.get_ref()),
                    ));
                }
                seen.push(t);
            }
            Ok(list.get_ref().clone())
        }
    }
}

pub(super) fn resolve(ctx: &Ctx<'_>, raw: RawFile) -> Result<Scenario, ScenarioError> {
    // [scenario]
    let m = raw.scenario;
    let stem = Path::new(ctx.file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if m.name.get_ref() != &stem {
        return Err(ctx.at(
            &m.name,
            "scenario.name",
            format!(
                "name \"{}\" must equal the file name \"{stem}\" (without .toml)",
                m.name.get_ref()
            ),
        ));
    }
    if m.seeds.get_ref().is_empty() {
        return Err(ctx.at(
            &m.seeds,
            "scenario.seeds",
            "seeds must list at least one seed (the seeds `cargo test` replays)",
        ));
    }
    if *m.duration_ms.get_ref() == 0 {
        return Err(ctx.at(
            &m.duration_ms,
            "scenario.duration_ms",
            "duration_ms must be at least 1",
        ));
    }
    let expect = m.expect.as_ref().map_or(Expect::Ok, |e| *e.get_ref());
    let mut expect_violations = Vec::new();
    if let Some(list) = &m.expect_violations {
        for name in list.get_ref() {
            if !CHECK_NAMES.contains(&name.get_ref().as_str()) {
                let msg = match closest_match(name.get_ref(), CHECK_NAMES.iter().copied()) {
                    Some(s) => format!(
                        "unknown check \"{}\"; did you mean \"{s}\"?",
                        name.get_ref()
                    ),
                    None => format!(
                        "unknown check \"{}\"; the checks are: {}",
                        name.get_ref(),
                        CHECK_NAMES.join(", ")
                    ),
                };
                return Err(ctx.at(name, "scenario.expect_violations", msg));
            }
            expect_violations.push(name.get_ref().clone());
        }
    }
    match expect {
        Expect::Violation if expect_violations.is_empty() => {
            let span = m.expect.as_ref().map(|e| e.span());
            return Err(ctx.err(
                span,
                "scenario.expect_violations",
                "expect = \"violation\" needs at least one check name in expect_violations",
            ));
        }
        Expect::Ok if !expect_violations.is_empty() => {
            let span = m.expect_violations.as_ref().map(|e| e.span());
            return Err(ctx.err(
                span,
                "scenario.expect_violations",
                "expect_violations needs expect = \"violation\" (with expect = \"ok\" no check may fail)",
            ));
        }
        _ => {}
    }
    let mut reach = Vec::new();
    for item in &m.reach {
        if let Some(msg) = crate::reach::unknown_item(item.get_ref()) {
            return Err(ctx.at(item, "scenario.reach", msg));
        }
        reach.push(item.get_ref().clone());
    }

    // [cluster]
    let c = raw.cluster;
    let brokers = *c.brokers.get_ref();
    if brokers < 1 {
        return Err(ctx.at(&c.brokers, "cluster.brokers", "brokers must be at least 1"));
    }
    let max = crate::world::NODES_PER_KIND_MAX;
    if brokers as u32 > max {
        return Err(ctx.at(
            &c.brokers,
            "cluster.brokers",
            format!(
                "brokers = {brokers} is more than ksim supports: at most {max} brokers (the \
                 simulated network gives each kind of node one /24 of addresses)"
            ),
        ));
    }
    let controller = c
        .controller
        .as_ref()
        .map_or(ControllerMode::Zk, |c| *c.get_ref());
    if controller == ControllerMode::Kraft {
        let span = c.controller.as_ref().map(|c| c.span());
        return Err(ctx.err(
            span,
            "cluster.controller",
            "not supported yet: cluster.controller = \"kraft\"",
        ));
    }
    let (broker_config, broker_properties) = config(
        ctx,
        &c.broker_config,
        "cluster.broker_config",
        BrokerConfig::from_properties,
    )?;
    let cluster = ClusterSpec {
        brokers,
        controller,
        broker_config,
        broker_properties,
    };

    // [[topics]]
    let mut topics: Vec<TopicSpec> = Vec::new();
    for (i, t) in raw.topics.iter().enumerate() {
        let path = format!("topics[{i}]");
        let name = t.name.get_ref().clone();
        validate_topic_name(&name).map_err(|msg| ctx.at(&t.name, format!("{path}.name"), msg))?;
        if topics.iter().any(|o| o.name == name) {
            return Err(ctx.at(
                &t.name,
                format!("{path}.name"),
                format!("Topic '{name}' already exists."),
            ));
        }
        if let Some(p) = &t.partitions {
            if *p.get_ref() < 1 {
                return Err(ctx.at(
                    p,
                    format!("{path}.partitions"),
                    "Number of partitions must be larger than 0.",
                ));
            }
        }
        if let Some(rf) = &t.replication_factor {
            if *rf.get_ref() < 1 {
                return Err(ctx.at(
                    rf,
                    format!("{path}.replication_factor"),
                    "Replication factor must be larger than 0.",
                ));
            }
        }
        let mut replica_assignment = None;
        let (partitions, replication_factor);
        if let Some(ra) = &t.replica_assignment {
            let key = format!("{path}.replica_assignment");
            let lists = ra.get_ref();
            if lists.is_empty() {
                return Err(ctx.at(ra, key, "Number of partitions must be larger than 0."));
            }
            if let Some(p) = &t.partitions {
                if *p.get_ref() as usize != lists.len() {
                    return Err(ctx.at(
                        ra,
                        key,
                        format!(
                            "replica_assignment lists {} partition(s) but partitions = {}",
                            lists.len(),
                            p.get_ref()
                        ),
                    ));
                }
            }
            let mut expected: Option<usize> =
                t.replication_factor.as_ref().map(|r| *r.get_ref() as usize);
            let mut resolved = Vec::new();
            for replicas in lists {
                let mut seen = BTreeSet::new();
                if replicas.get_ref().is_empty() {
                    return Err(ctx.at(
                        replicas,
                        key,
                        "The manual partition assignment includes an empty replica list.",
                    ));
                }
                for &b in replicas.get_ref() {
                    if b < 0 || b >= brokers {
                        return Err(ctx.at(
                            replicas,
                            key,
                            format!("The manual partition assignment includes broker {b}, but no such broker is registered."),
                        ));
                    }
                    if !seen.insert(b) {
                        return Err(ctx.at(
                            replicas,
                            key,
                            format!("The manual partition assignment includes the broker {b} more than once."),
                        ));
                    }
                }
                let n = replicas.get_ref().len();
                match expected {
                    Some(e) if e != n => {
                        let msg = if resolved.is_empty() {
                            format!("replica_assignment has {n} replica(s) per partition but replication_factor = {e}")
                        } else {
                            format!(
                                "The manual partition assignment includes a partition with {n} replica(s), but this is \
                                 not consistent with previous partitions, which have {e} replica(s)."
                            )
                        };
                        return Err(ctx.at(replicas, key, msg));
                    }
                    _ => expected = Some(n),
                }
                resolved.push(
                    replicas
                        .get_ref()
                        .iter()
                        .map(|&b| BrokerId(b))
                        .collect::<Vec<_>>(),
                );
            }
            partitions = lists.len() as i32;
            replication_factor = expected.unwrap_or(1) as i32;
            replica_assignment = Some(resolved);
        } else {
            partitions = t
                .partitions
                .as_ref()
                .map_or(cluster.broker_config.num_partitions, |p| *p.get_ref());
            replication_factor = t
                .replication_factor
                .as_ref()
                .map_or(cluster.broker_config.default_replication_factor, |r| {
                    *r.get_ref()
                });
            if replication_factor > brokers {
                let span = t
                    .replication_factor
                    .as_ref()
                    .map_or(t.name.span(), |r| r.span());
                return Err(ctx.err(
                    Some(span),
                    format!("{path}.replication_factor"),
                    format!("Replication factor: {replication_factor} larger than available brokers: {brokers}."),
                ));
            }
        }
        let (config, properties) = config(
            ctx,
            &t.config,
            &format!("{path}.config"),
            TopicConfig::from_properties,
        )?;
        topics.push(TopicSpec {
            name,
            partitions,
            replication_factor,
            replica_assignment,
            config,
            properties,
        });
    }

    let check_topic = |name: &Spanned<String>, key: String| -> Result<(), ScenarioError> {
        if topics.iter().any(|t| &t.name == name.get_ref()) {
            return Ok(());
        }
        let msg = match closest_match(name.get_ref(), topics.iter().map(|t| t.name.as_str())) {
            Some(s) => format!(
                "unknown topic \"{}\"; did you mean \"{s}\"?",
                name.get_ref()
            ),
            None => format!(
                "unknown topic \"{}\" (declare it in [[topics]])",
                name.get_ref()
            ),
        };
        Err(ctx.at(name, key, msg))
    };

    // More clients of one kind than the simulated network has addresses for.
    let too_many = |span: Option<Range<usize>>, key: String, n: u32, kind: &str| {
        ctx.err(
            span,
            key,
            format!(
                "{n} {kind}s in all is more than ksim supports: at most {max} {kind} clients \
                 (the simulated network gives each kind of node one /24 of addresses)"
            ),
        )
    };
    // [[producers]]
    let mut producers = Vec::new();
    let mut producers_so_far: u32 = 0;
    for (i, p) in raw.producers.iter().enumerate() {
        let path = format!("producers[{i}]");
        let written = producer_topics(ctx, p, &path, &check_topic)?;
        let count = p.count.as_ref().map_or(1, |c| *c.get_ref());
        if count < 1 {
            let c = p.count.as_ref().expect("count < 1 only when set");
            return Err(ctx.at(c, format!("{path}.count"), "count must be at least 1"));
        }
        producers_so_far = producers_so_far.saturating_add(count);
        if producers_so_far > max {
            let span = p.count.as_ref().map(|c| c.span());
            return Err(too_many(
                span,
                format!("{path}.count"),
                producers_so_far,
                "producer",
            ));
        }
        let rate = check_rate(ctx, &p.rate_per_sec, format!("{path}.rate_per_sec"))?;
        let send_style = match &p.send_style {
            None => SendStyle::default(),
            Some(v) => SendStyle::parse(v.get_ref()).ok_or_else(|| {
                ctx.at(
                    v,
                    format!("{path}.send_style"),
                    format!(
                        "unknown send_style \"{}\"; expected one of: {}",
                        v.get_ref(),
                        SendStyle::NAMES.join(", ")
                    ),
                )
            })?,
        };
        let (config, properties) = config(
            ctx,
            &p.config,
            &format!("{path}.config"),
            ProducerConfig::from_properties,
        )?;
        let keys = p.keys.as_ref().map_or(0, |k| *k.get_ref());
        // Kafka's LogValidator refuses keyless records on a compacted topic
        // (InvalidRecordException, CORRUPT_MESSAGE): every send would fail.
        for topic in &written {
            let compacted = topics
                .iter()
                .find(|t| &t.name == topic.get_ref())
                .map(|t| {
                    t.config
                        .log_config(&cluster.broker_config)
                        .cleanup_policy
                        .compact
                })
                .unwrap_or(false);
            if compacted && keys == 0 {
                let span = p.keys.as_ref().map_or(topic.span(), |k| k.span());
                return Err(ctx.err(
                    Some(span),
                    format!("{path}.keys"),
                    format!(
                        "topic \"{}\" is compacted (cleanup.policy includes compact) and keys = 0 writes null keys, which the broker rejects: \"Compacted topic cannot accept message without key in topic partition {}-0.\" Set keys to 1 or more",
                        topic.get_ref(),
                        topic.get_ref()
                    ),
                ));
            }
        }
        let transaction = match (&p.transaction, &config.transactional_id) {
            (None, None) => None,
            (Some(t), None) => {
                return Err(ctx.at(
                    t,
                    format!("{path}.transaction"),
                    "transaction needs a \"transactional.id\" in the producer's config (a producer without one cannot run transactions)",
                ))
            }
            (t, Some(_)) => {
                let d = ksim_model::producer::TransactionSpec::default();
                let mut settings = TransactionSettings {
                    records: [d.records_min, d.records_max],
                    abort_percent: d.abort_percent,
                    id_per_start: false,
                };
                if let Some(t) = t {
                    let raw = t.get_ref();
                    if let Some(r) = &raw.records {
                        match r.as_slice() {
                            [lo, hi] if *lo >= 1 && lo <= hi => settings.records = [*lo, *hi],
                            _ => {
                                return Err(ctx.at(
                                    t,
                                    format!("{path}.transaction.records"),
                                    format!("records must be [min, max] with 1 <= min <= max, not {r:?}"),
                                ))
                            }
                        }
                    }
                    if let Some(a) = raw.abort_percent {
                        if a > 100 {
                            return Err(ctx.at(
                                t,
                                format!("{path}.transaction.abort_percent"),
                                format!("abort_percent must be between 0 and 100, not {a}"),
                            ));
                        }
                        settings.abort_percent = a;
                    }
                    if let Some(b) = raw.id_per_start {
                        settings.id_per_start = b;
                    }
                }
                Some(settings)
            }
        };
        producers.push(ProducerSpec {
            topics: written.iter().map(|t| t.get_ref().clone()).collect(),
            count,
            rate_per_sec: rate,
            keys,
            send_style,
            config,
            properties,
            transaction,
        });
    }

    // [[consumers]]
    let mut consumers = Vec::new();
    let mut consumers_so_far: u32 = 0;
    for (i, c) in raw.consumers.iter().enumerate() {
        let path = format!("consumers[{i}]");
        if let (Some(g), Some(_)) = (&c.group, &c.seek_to) {
            return Err(ctx.at(
                g,
                format!("{path}.group"),
                "not supported: seek_to on a consumer group entry (a member's partitions are assigned by the group; seek_to needs assign mode)",
            ));
        }
        if let Some(g) = &c.group {
            if g.get_ref().trim().is_empty() {
                return Err(ctx.at(g, format!("{path}.group"), "group must not be empty"));
            }
        }
        let members = c.members.as_ref().map_or(1, |m| *m.get_ref());
        if members < 1 {
            let m = c.members.as_ref().expect("members < 1 only when set");
            return Err(ctx.at(m, format!("{path}.members"), "members must be at least 1"));
        }
        consumers_so_far = consumers_so_far.saturating_add(members);
        if consumers_so_far > max {
            let span = c.members.as_ref().map(|m| m.span());
            return Err(too_many(
                span,
                format!("{path}.members"),
                consumers_so_far,
                "consumer",
            ));
        }
        if c.topics.get_ref().is_empty() {
            return Err(ctx.at(
                &c.topics,
                format!("{path}.topics"),
                "topics must name at least one topic",
            ));
        }
        for t in c.topics.get_ref() {
            check_topic(t, format!("{path}.topics"))?;
        }
        let (mut config, properties) = consumer_config(
            ctx,
            &c.config,
            &format!("{path}.config"),
            c.group.as_ref().map(|g| g.get_ref().as_str()),
        )?;
        if let Some(g) = &c.group {
            if let Some(id) = config.group_id.as_ref().filter(|id| *id != g.get_ref()) {
                return Err(ctx.at(
                    g,
                    format!("{path}.group"),
                    format!(
                        "group \"{}\" contradicts group.id \"{id}\" in config: drop one of them",
                        g.get_ref()
                    ),
                ));
            }
            config.group_id = Some(g.get_ref().clone());
            if !properties.contains_key("enable.auto.commit") {
                config.enable_auto_commit = true;
            }
            // Kafka's consumer refuses this in its constructor (`Heartbeat`:
            // IllegalArgumentException "Heartbeat must be set lower than the session timeout").
            if config.heartbeat_interval_ms >= config.session_timeout_ms {
                // At the value of whichever of the two keys the entry sets (heartbeat first).
                let value_of = |key: &str| {
                    c.config.as_ref().and_then(|r| {
                        r.get_ref()
                            .iter()
                            .find(|(k, _)| k.get_ref() == key)
                            .map(|(_, v)| v.span())
                    })
                };
                let (span, key) = match value_of("heartbeat.interval.ms") {
                    Some(span) => (span, "heartbeat.interval.ms"),
                    None => (
                        value_of("session.timeout.ms").unwrap_or(g.span()),
                        "session.timeout.ms",
                    ),
                };
                return Err(ctx.err(
                    Some(span),
                    format!("{path}.config.\"{key}\""),
                    format!(
                        "Heartbeat must be set lower than the session timeout: heartbeat.interval.ms = {} is not below session.timeout.ms = {}",
                        config.heartbeat_interval_ms, config.session_timeout_ms
                    ),
                ));
            }
        }
        let processing_ms = match &c.processing_ms {
            None => None,
            Some(v) => {
                if c.group.is_none() {
                    return Err(ctx.at(
                        v,
                        format!("{path}.processing_ms"),
                        "processing_ms needs a group (subscribe mode)",
                    ));
                }
                Some(processing_range(ctx, v, format!("{path}.processing_ms"))?)
            }
        };
        let commit = resolve_commit(ctx, c, &path, &mut config, &properties)?;
        let start_ms = c.start_ms.as_ref().map_or(0, |v| *v.get_ref());
        let run_ms = *m.duration_ms.get_ref() + m.heal_ms.unwrap_or(10_000);
        if let Some(v) = &c.start_ms {
            if start_ms >= run_ms {
                return Err(ctx.at(
                    v,
                    format!("{path}.start_ms"),
                    format!("start_ms {start_ms} is not before the end of the run (duration_ms + heal_ms = {run_ms})"),
                ));
            }
        }
        let processing_change = resolve_processing_change(ctx, c, &path, start_ms, run_ms)?;
        let seek_to = match &c.seek_to {
            None => None,
            Some(raw) => {
                let r = raw.get_ref();
                let key = format!("{path}.seek_to");
                let topic = r
                    .topic
                    .clone()
                    .unwrap_or_else(|| c.topics.get_ref()[0].get_ref().clone());
                let Some(t) = c
                    .topics
                    .get_ref()
                    .iter()
                    .find(|t| t.get_ref() == &topic)
                    .and_then(|t| topics.iter().find(|x| &x.name == t.get_ref()))
                else {
                    return Err(ctx.at(
                        raw,
                        key,
                        format!("topic \"{topic}\" is not one of this entry's topics"),
                    ));
                };
                if r.partition < 0 || r.partition >= t.partitions {
                    return Err(ctx.at(
                        raw,
                        key,
                        format!(
                            "partition {} does not exist: {topic} has partitions 0..{}",
                            r.partition,
                            t.partitions - 1
                        ),
                    ));
                }
                if r.offset < 0 {
                    return Err(ctx.at(raw, key, "offset must be at least 0"));
                }
                if r.at_ms < start_ms || r.at_ms >= run_ms {
                    return Err(ctx.at(
                        raw,
                        key,
                        format!("at_ms {} must be in [start_ms, duration_ms + heal_ms) = [{start_ms}, {run_ms})", r.at_ms),
                    ));
                }
                Some(SeekSpec {
                    tp: TopicPartition::new(topic.clone(), r.partition),
                    offset: r.offset,
                    at_ms: r.at_ms,
                })
            }
        };
        consumers.push(ConsumerSpec {
            start_ms,
            seek_to,
            commit,
            group: c.group.as_ref().map(|g| g.get_ref().clone()),
            processing_ms,
            processing_change,
            members,
            topics: c
                .topics
                .get_ref()
                .iter()
                .map(|t| t.get_ref().clone())
                .collect(),
            config,
            properties,
        });
    }

    // [[processors]]
    let processors =
        super::processors::resolve_processors(ctx, &raw.processors, &topics, consumers_so_far)?;

    let mut scenario = Scenario {
        file: ctx.file.to_string(),
        name: m.name.get_ref().clone(),
        title: m.title.clone().unwrap_or_else(|| m.name.get_ref().clone()),
        description: m.description.clone().unwrap_or_default(),
        references: m.references.clone(),
        duration_ms: *m.duration_ms.get_ref(),
        heal_ms: m.heal_ms.unwrap_or(10_000),
        seeds: m.seeds.get_ref().clone(),
        expect,
        expect_violations,
        reach,
        cluster,
        topics,
        producers,
        consumers,
        processors,
        faults: FaultsSpec {
            kinds: Vec::new(),
            interval_ms: [1_000, 5_000],
            duration_ms: [500, 4_000],
            swarm: false,
            spare_last_replica: true,
            schedule: Vec::new(),
            clients: Vec::new(),
            members: Vec::new(),
            replacements: Vec::new(),
        },
    };

    // [faults]
    if let Some(f) = raw.faults {
        scenario.faults = resolve_faults(ctx, &scenario, f)?;
    }
    Ok(scenario)
}

/// `processing_ms = [min, max]` (also inside `processing_change`): two numbers of ms,
/// `min <= max`; refused at `v` otherwise.
fn processing_range(
    ctx: &Ctx<'_>,
    v: &Spanned<Vec<u64>>,
    key: String,
) -> Result<(u64, u64), ScenarioError> {
    match v.get_ref().as_slice() {
        [lo, hi] if lo <= hi => Ok((*lo, *hi)),
        [lo, hi] => Err(ctx.at(
            v,
            key,
            format!("processing_ms [{lo}, {hi}] is reversed: write [min, max] with min <= max"),
        )),
        _ => Err(ctx.at(
            v,
            key,
            "processing_ms must be [min, max] (two numbers of ms)",
        )),
    }
}

/// `[[consumers]] processing_change = [{ at_ms, processing_ms = [min, max] }, ...]`: needs a
/// group (subscribe mode), each `at_ms` in `[start_ms, run_ms)` and later than the one before.
fn resolve_processing_change(
    ctx: &Ctx<'_>,
    c: &RawConsumer,
    path: &str,
    start_ms: u64,
    run_ms: u64,
) -> Result<Vec<ProcessingChangeSpec>, ScenarioError> {
    let Some(list) = &c.processing_change else {
        return Ok(Vec::new());
    };
    if c.group.is_none() {
        return Err(ctx.at(
            list,
            format!("{path}.processing_change"),
            "processing_change needs a group (subscribe mode)",
        ));
    }
    let mut out: Vec<ProcessingChangeSpec> = Vec::new();
    for (i, entry) in list.get_ref().iter().enumerate() {
        let e = entry.get_ref();
        let key = format!("{path}.processing_change[{i}]");
        let at_ms = *e.at_ms.get_ref();
        if at_ms < start_ms || at_ms >= run_ms {
            return Err(ctx.at(
                &e.at_ms,
                format!("{key}.at_ms"),
                format!("at_ms {at_ms} must be in [start_ms, duration_ms + heal_ms) = [{start_ms}, {run_ms})"),
            ));
        }
        if let Some(prev) = out.last() {
            if at_ms <= prev.at_ms {
                return Err(ctx.at(
                    &e.at_ms,
                    format!("{key}.at_ms"),
                    format!(
                        "at_ms {at_ms} is not after the previous change's at_ms {}: list the changes in time order",
                        prev.at_ms
                    ),
                ));
            }
        }
        let processing_ms =
            processing_range(ctx, &e.processing_ms, format!("{key}.processing_ms"))?;
        out.push(ProcessingChangeSpec {
            at_ms,
            processing_ms,
        });
    }
    Ok(out)
}

//! `[[processors]]` (SCENARIOS.md "Transactions and exactly-once"): consume-transform-produce
//! clients. One `config` table holds both halves of a processor: each key goes to the consumer
//! if `ConsumerConfig` knows it, to the producer if `ProducerConfig` does (both for keys they
//! share), and a key neither knows is reported by the consumer's parser with its suggestion.

use super::*;
use ksim_model::config::{known_keys, parse_ms, AutoOffsetReset, ConfigKind};
use ksim_model::protocol::IsolationLevel;

/// Kafka Streams' `StreamsConfig.COMMIT_INTERVAL_MS_CONFIG`, a processor key of its own (see
/// [`ProcessorSpec::commit_interval_ms`]).
pub const COMMIT_INTERVAL_MS: &str = "commit.interval.ms";

/// Resolves every `[[processors]]` entry; `topics` are the scenario's topics.
/// `_consumers_before` is the number of consumer clients (processors are numbered apart).
pub(super) fn resolve_processors(
    ctx: &Ctx<'_>,
    raw: &[Spanned<RawProcessor>],
    topics: &[TopicSpec],
    _consumers_before: u32,
) -> Result<Vec<ProcessorSpec>, ScenarioError> {
    let max = crate::world::NODES_PER_KIND_MAX;
    let consumer_keys = known_keys(ConfigKind::Consumer);
    let producer_keys = known_keys(ConfigKind::Producer);
    let mut out = Vec::new();
    let mut so_far: u32 = 0;
    for (i, entry) in raw.iter().enumerate() {
        let p = entry.get_ref();
        let path = format!("processors[{i}]");
        if p.group.get_ref().trim().is_empty() {
            return Err(ctx.at(&p.group, format!("{path}.group"), "group must not be empty"));
        }
        let members = p.members.as_ref().map_or(1, |m| *m.get_ref());
        if members < 1 {
            let m = p.members.as_ref().expect("members < 1 only when set");
            return Err(ctx.at(m, format!("{path}.members"), "members must be at least 1"));
        }
        so_far = so_far.saturating_add(members);
        if so_far > max {
            let span = p.members.as_ref().map_or(entry.span(), |m| m.span());
            return Err(ctx.err(
                Some(span),
                format!("{path}.members"),
                format!(
                    "{so_far} processors in all is more than ksim supports: at most {max} \
                     processor clients (the simulated network gives each kind of node one /24 \
                     of addresses)"
                ),
            ));
        }
        for (topic, key) in [(&p.input, "input"), (&p.output, "output")] {
            if !topics.iter().any(|t| &t.name == topic.get_ref()) {
                let msg =
                    match closest_match(topic.get_ref(), topics.iter().map(|t| t.name.as_str())) {
                        Some(s) => format!(
                            "unknown topic \"{}\"; did you mean \"{s}\"?",
                            topic.get_ref()
                        ),
                        None => format!(
                            "unknown topic \"{}\" (declare it in [[topics]])",
                            topic.get_ref()
                        ),
                    };
                return Err(ctx.at(topic, format!("{path}.{key}"), msg));
            }
        }
        let processing_ms = match &p.processing_ms {
            None => None,
            Some(v) => match v.get_ref().as_slice() {
                [lo, hi] if lo <= hi => Some((*lo, *hi)),
                [lo, hi] => {
                    return Err(ctx.at(
                        v,
                        format!("{path}.processing_ms"),
                        format!(
                        "processing_ms [{lo}, {hi}] is reversed: write [min, max] with min <= max"
                    ),
                    ))
                }
                _ => {
                    return Err(ctx.at(
                        v,
                        format!("{path}.processing_ms"),
                        "processing_ms must be [min, max] (two numbers of ms)",
                    ))
                }
            },
        };
        // Split the table between the two halves (`commit.interval.ms` belongs to neither).
        let written = props_of(&p.config);
        let mut consumer_props = Properties::new();
        let mut producer_props = Properties::new();
        for (k, v) in &written {
            if k == COMMIT_INTERVAL_MS {
                continue;
            }
            let (c, pr) = (
                consumer_keys.contains(&k.as_str()),
                producer_keys.contains(&k.as_str()),
            );
            if c || !pr {
                consumer_props.insert(k.clone(), v.clone());
            }
            if pr {
                producer_props.insert(k.clone(), v.clone());
            }
        }
        let config_path = format!("{path}.config");
        let located = |e: ConfigError| match &p.config {
            Some(r) => ctx.config_err(r, &config_path, e),
            None => ctx.err(
                Some(entry.span()),
                format!("{config_path}.{}", e.key),
                e.message,
            ),
        };
        let commit_interval_ms = match written.get(COMMIT_INTERVAL_MS) {
            None => ksim_model::processor::COMMIT_INTERVAL_MS_DEFAULT,
            Some(v) => parse_ms(COMMIT_INTERVAL_MS, v).map_err(located)?,
        };
        let producer_config = ProducerConfig::from_properties(&producer_props).map_err(located)?;
        if let Some(v) = written.get("enable.auto.commit") {
            if matches!(v, PropValue::Bool(true)) || matches!(v, PropValue::Str(s) if s == "true") {
                return Err(located(ConfigError {
                    key: "enable.auto.commit".into(),
                    message: "a processor commits its input offsets itself (with its \
                              transaction, or commitSync() after a flush): enable.auto.commit \
                              must be false"
                        .into(),
                }));
            }
        }
        consumer_props
            .entry("group.id".to_string())
            .or_insert_with(|| PropValue::Str(p.group.get_ref().clone()));
        let mut consumer_config =
            ConsumerConfig::from_properties(&consumer_props).map_err(located)?;
        if consumer_config.group_id.as_deref() != Some(p.group.get_ref().as_str()) {
            return Err(ctx.at(
                &p.group,
                format!("{path}.group"),
                format!(
                    "group \"{}\" contradicts group.id {:?} in config: drop one of them",
                    p.group.get_ref(),
                    consumer_config.group_id
                ),
            ));
        }
        consumer_config.enable_auto_commit = false;
        if !written.contains_key("auto.offset.reset") {
            consumer_config.auto_offset_reset = AutoOffsetReset::Earliest;
        }
        if !written.contains_key("isolation.level") && producer_config.transactional_id.is_some() {
            consumer_config.isolation_level = IsolationLevel::ReadCommitted;
        }
        out.push(ProcessorSpec {
            group: p.group.get_ref().clone(),
            members,
            input: p.input.get_ref().clone(),
            output: p.output.get_ref().clone(),
            processing_ms,
            commit_interval_ms,
            consumer_config,
            producer_config,
            properties: written,
        });
    }
    Ok(out)
}

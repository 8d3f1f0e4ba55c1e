//! `report.html` and the counterfactual re-runs, on a violating legacy scenario with a pinned
//! seed (`jepsen-2013-isr-shrink`, seed 34: the ISR shrinks to the leader, an unclean election
//! follows, acknowledged records are lost):
//! - the page is well-formed (a strict XML parser reads it) and fetches nothing;
//! - every chart is there: a LEO/HW chart and an ISR chart for each partition with a violation,
//!   the space-time diagram, the client timeline, the verdict and counterfactual tables;
//! - the charts' data agree with `events.jsonl` (each replica's final HW is its last
//!   `high-watermark-changed` event; the epoch bands are the controller's state writes);
//! - the counterfactual re-runs keep the fault schedule and include `min.insync.replicas = 2`;
//! - the same seed gives a byte-identical `report.html`.

use ksim::report::counterfactual::counterfactuals;
use ksim::run::run;
use ksim::scenario::load;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const SCENARIO: &str = "scenarios/jepsen-2013-isr-shrink.toml";
const SEED: u64 = 34;

fn tp_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => format!(
            "{}-{}",
            o["topic"].as_str().expect("topic"),
            o["partition"].as_i64().expect("partition")
        ),
        other => panic!("tp {other}"),
    }
}

#[test]
fn a_violating_run_gets_a_complete_self_contained_page_that_agrees_with_its_events() {
    let sc = load(Path::new(SCENARIO)).expect("loads");
    let result = run(&sc, SEED);
    assert!(
        !result.checks.violations.is_empty(),
        "seed {SEED} must violate"
    );
    let cf = counterfactuals(&result).expect("a violating run has counterfactuals");
    let dir = tempfile::tempdir().unwrap();
    result
        .write_outputs_with(dir.path(), Some(&cf))
        .expect("writes");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();

    // Self-contained: no script, no stylesheet or image fetched, no URL but the SVG namespace.
    for banned in ["<script", "<link", "src=", "<img", "@import", "<iframe"] {
        assert!(!html.contains(banned), "report.html contains {banned}");
    }
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_ns.contains("http"), "report.html names a URL");
    assert!(!without_ns.contains("url(") || !without_ns.replace("url(#", "").contains("url("));

    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("report.html is well-formed");
    let by_id = |id: &str| doc.descendants().find(|n| n.attribute("id") == Some(id));
    for id in [
        "verdict",
        "charts",
        "spacetime",
        "clients",
        "counterfactuals",
        "report",
    ] {
        assert!(by_id(id).is_some(), "no #{id}");
    }

    // Every partition with a violation has both charts, linked from the verdict table.
    let violated: std::collections::BTreeSet<String> = result
        .checks
        .violations
        .iter()
        .flat_map(ksim::report::focus_points)
        .map(|f| f.tp.to_string())
        .collect();
    assert!(!violated.is_empty());
    for tp in &violated {
        let id = format!("chart-{tp}");
        let fig = by_id(&id).unwrap_or_else(|| panic!("no chart for {tp}"));
        let classes: Vec<&str> = fig
            .descendants()
            .filter(|n| n.has_tag_name("svg"))
            .filter_map(|n| n.attribute("class"))
            .collect();
        assert_eq!(classes, ["leo-hw", "isr"], "{tp}");
        assert!(html.contains(&format!("href=\"#{id}\"")), "no link to {id}");
    }
    let svg_class = |c: &str| {
        doc.descendants()
            .any(|n| n.has_tag_name("svg") && n.attribute("class") == Some(c))
    };
    assert!(svg_class("spacetime") && svg_class("timeline"));
    let st = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("spacetime"))
        .unwrap();
    assert!(
        st.attribute("data-arrows")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );

    // Chart data against events.jsonl.
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let mut last_hw: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut epochs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in events.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["kind"].as_str() {
            Some("high-watermark-changed") => {
                last_hw.insert(
                    (tp_name(&v["tp"]), v["broker"].as_i64().unwrap()),
                    v["high_watermark"].as_i64().unwrap(),
                );
            }
            Some("partition-state-changed") => {
                let e = epochs.entry(tp_name(&v["tp"])).or_default();
                let epoch = v["leader_epoch"].as_i64().unwrap();
                e.push(epoch);
            }
            _ => {}
        }
    }
    let mut checked = 0;
    for fig in doc
        .descendants()
        .filter(|n| n.has_tag_name("figure") && n.attribute("data-tp").is_some())
    {
        let tp = fig.attribute("data-tp").unwrap().to_string();
        for a in fig.attributes() {
            if let Some(b) = a.name().strip_prefix("data-hw-final-broker-") {
                let b: i64 = b.parse().unwrap();
                assert_eq!(
                    Some(&a.value().parse::<i64>().unwrap()),
                    last_hw.get(&(tp.clone(), b)),
                    "{tp} broker-{b}"
                );
                checked += 1;
            }
        }
        // Every epoch band is a leader epoch the controller wrote, in order.
        let bands: Vec<i64> = fig
            .attribute("data-epochs")
            .unwrap()
            .split_whitespace()
            .map(|s| s.split(':').nth(1).unwrap().parse().unwrap())
            .collect();
        let written = epochs.get(&tp).cloned().unwrap_or_default();
        let mut it = written.iter();
        assert!(
            bands.iter().all(|b| it.any(|w| w == b)),
            "{tp}: bands {bands:?} not among {written:?}"
        );
    }
    assert!(checked >= 3, "too few HW series checked: {checked}");

    // Counterfactuals: the schedule is kept, and the lesson's min.insync.replicas = 2 is there.
    assert!(!cf.runs.is_empty());
    for r in &cf.runs {
        assert!(r.same_plan, "{}: the fault plan changed", r.setting);
    }
    assert!(
        cf.runs
            .iter()
            .any(|r| r.setting.contains("min.insync.replicas = 2")),
        "{:?}",
        cf.runs
    );
    assert!(md.contains("## Counterfactual re-runs"));
    assert!(md.contains("| setting changed | outcome | what changed | fault schedule |"));

    // Determinism: the same seed gives the same page, byte for byte.
    let again = run(&sc, SEED);
    let cf2 = counterfactuals(&again).unwrap();
    assert_eq!(html, ksim::report::html::render(&again, Some(&cf2)));
}

#[test]
fn a_passing_run_gets_a_page_without_counterfactuals() {
    let sc = load(Path::new("scenarios/jepsen-2013-isr-shrink-fixed.toml")).expect("loads");
    let seed = sc.seeds[0];
    let result = run(&sc, seed);
    assert!(result.checks.violations.is_empty());
    assert!(counterfactuals(&result).is_none());
    let html = ksim::report::html::render(&result, None);
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("well-formed");
    assert!(doc
        .descendants()
        .any(|n| n.attribute("class") == Some("leo-hw")));
    assert!(!html.contains("id=\"counterfactuals\""));
}

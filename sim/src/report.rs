//! `report.md`: the story of a run for a person (being written).

use crate::run::RunResult;

/// Renders the report of a run as Markdown.
pub fn render(run: &RunResult) -> String {
    let mut s = format!(
        "# {} (seed {})\n\nOutcome: {:?}\n",
        run.scenario.name, run.output.seed, run.outcome
    );
    for v in &run.checks.violations {
        s.push_str(&format!("- {}: {}\n", v.check, v.message));
    }
    s
}

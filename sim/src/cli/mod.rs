//! Helpers for the `ksim` command line (`sim/src/bin/ksim.rs`) that are worth unit tests of
//! their own: the output-directory safety check, text formatting of verdicts, the seed
//! explorer ([`explore`]), the files of a sharded sweep ([`shard`]), and two commands of
//! their own, `ksim shrink` ([`shrink`]) and `ksim assign` ([`assign`]).
//!
//! The binary owns argument parsing and printing; what lives here does no printing and never
//! exits the process, so every decision it makes can be tested without running a simulation.

pub mod assign;
pub mod explore;
pub mod shard;
pub mod shrink;

use std::fmt;
use std::path::{Path, PathBuf};

/// The files [`crate::run::RunResult::write_outputs`] writes; a directory holding only these
/// (or nothing) may be written into again without asking.
pub const OUTPUT_FILES: [&str; 5] = [
    "summary.json",
    "history.jsonl",
    "events.jsonl",
    "report.md",
    "report.html",
];

/// Why `--out DIR` may not be written into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutDirError {
    /// The path exists and is not a directory.
    NotADirectory(PathBuf),
    /// The directory holds entries other than [`OUTPUT_FILES`] (the first few, sorted, and
    /// how many there are in all).
    ForeignEntries {
        dir: PathBuf,
        sample: Vec<String>,
        total: usize,
    },
    /// The directory could not be listed.
    Unreadable { dir: PathBuf, reason: String },
}

impl fmt::Display for OutDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutDirError::NotADirectory(p) => {
                write!(f, "--out {} exists and is not a directory", p.display())
            }
            OutDirError::ForeignEntries { dir, sample, total } => {
                write!(
                    f,
                    "--out {} already holds files ksim did not write ({}{}); \
                     choose an empty or new directory, or pass --force to write the run's \
                     five output files ({}) beside them",
                    dir.display(),
                    sample.join(", "),
                    if *total > sample.len() {
                        format!(" and {} more", total - sample.len())
                    } else {
                        String::new()
                    },
                    OUTPUT_FILES.join(", "),
                )
            }
            OutDirError::Unreadable { dir, reason } => {
                write!(f, "cannot read --out {}: {reason}", dir.display())
            }
        }
    }
}

impl std::error::Error for OutDirError {}

/// Checks that a run may write its outputs into `dir`: it does not exist yet, or it is a
/// directory that holds nothing but earlier outputs ([`OUTPUT_FILES`]). Anything else is the
/// user's, and a run never overwrites or mixes into the user's files without `--force`.
/// (A sub-directory counts as a foreign entry too: we do not look inside it.)
pub fn check_out_dir(dir: &Path) -> Result<(), OutDirError> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(OutDirError::Unreadable {
                dir: dir.to_path_buf(),
                reason: io_reason(&e),
            })
        }
    };
    if !meta.is_dir() {
        return Err(OutDirError::NotADirectory(dir.to_path_buf()));
    }
    let unreadable = |e: std::io::Error| OutDirError::Unreadable {
        dir: dir.to_path_buf(),
        reason: io_reason(&e),
    };
    let mut foreign = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !(is_file && OUTPUT_FILES.contains(&name.as_str())) {
            foreign.push(name);
        }
    }
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    let total = foreign.len();
    foreign.truncate(3);
    Err(OutDirError::ForeignEntries {
        dir: dir.to_path_buf(),
        sample: foreign,
        total,
    })
}

/// An I/O error's text without the `(os error N)` tail, as the scenario loader words it.
pub fn io_reason(e: &std::io::Error) -> String {
    let reason = e.to_string();
    match reason.find(" (os error") {
        Some(i) => reason[..i].to_string(),
        None => reason,
    }
}

/// `message` cut to at most `max_chars` characters (at a character boundary, on one line),
/// with a note of how much was left out. Violation messages can carry long lists of offsets;
/// the terminal gets the start and `summary.json` keeps the whole.
pub fn truncate_message(message: &str, max_chars: usize) -> String {
    let one_line: String = message
        .split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" / ");
    let total = one_line.chars().count();
    if total <= max_chars {
        return one_line;
    }
    let kept: String = one_line.chars().take(max_chars).collect();
    format!("{}... ({} more chars)", kept.trim_end(), total - max_chars)
}

/// Simulated time per wall time, `simulated_ms / wall_ms` (a zero wall time counts as 1 ms).
pub fn speedup(simulated_ms: u64, wall_ms: u64) -> f64 {
    simulated_ms as f64 / wall_ms.max(1) as f64
}

/// A wall duration for people: `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn human_duration_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 120_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0).round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_dir_missing_or_empty_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(check_out_dir(&tmp.path().join("new/nested")), Ok(()));
        assert_eq!(check_out_dir(tmp.path()), Ok(()));
    }

    #[test]
    fn out_dir_with_only_earlier_outputs_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        for f in OUTPUT_FILES {
            std::fs::write(tmp.path().join(f), "old").unwrap();
        }
        assert_eq!(check_out_dir(tmp.path()), Ok(()));
    }

    #[test]
    fn out_dir_with_user_files_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("summary.json"), "old").unwrap();
        std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        std::fs::create_dir(tmp.path().join("src")).unwrap();
        match check_out_dir(tmp.path()) {
            Err(OutDirError::ForeignEntries { sample, total, .. }) => {
                assert_eq!(sample, vec!["notes.txt".to_string(), "src".to_string()]);
                assert_eq!(total, 2);
            }
            other => panic!("expected refusal, got {other:?}"),
        }
        let message = check_out_dir(tmp.path()).unwrap_err().to_string();
        assert!(
            message.contains("notes.txt") && message.contains("--force"),
            "{message}"
        );
    }

    #[test]
    fn out_dir_lists_a_sample_of_many_user_files() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(tmp.path().join(format!("f{i}")), "").unwrap();
        }
        let message = check_out_dir(tmp.path()).unwrap_err().to_string();
        assert!(message.contains("f0, f1, f2 and 2 more"), "{message}");
    }

    #[test]
    fn out_dir_that_is_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("report.md");
        std::fs::write(&file, "mine").unwrap();
        assert_eq!(
            check_out_dir(&file),
            Err(OutDirError::NotADirectory(file.clone()))
        );
    }

    #[test]
    fn an_output_name_used_by_a_directory_is_foreign() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("report.md")).unwrap();
        assert!(check_out_dir(tmp.path()).is_err());
    }

    #[test]
    fn truncation_keeps_short_messages_and_cuts_long_ones_on_char_boundaries() {
        assert_eq!(truncate_message("short", 10), "short");
        assert_eq!(truncate_message("a\nb", 10), "a / b");
        let long = "é".repeat(30);
        let cut = truncate_message(&long, 10);
        assert_eq!(cut, format!("{}... (20 more chars)", "é".repeat(10)));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration_ms(850.0), "850 ms");
        assert_eq!(human_duration_ms(12_345.0), "12.3 s");
        assert_eq!(human_duration_ms(245_000.0), "4 min 05 s");
        assert_eq!(speedup(50_000, 0), 50_000.0);
    }
}

//! Shrinking a failing run's faults to a small scripted schedule that still fails the same
//! check (`ksim shrink`, issue 15).
//!
//! This module holds the search and nothing that runs a simulation: [`ddmin`] (delta
//! debugging) finds a small subset of the fault *units*, then [`simplify`] shortens each
//! remaining unit and moves it later. Both ask an [`Oracle`] which of a batch of candidates
//! still fail; the caller answers by running the simulator (on several threads if it likes).
//! [`schedule`] turns the faults a run recorded into units and units back into a
//! `[[faults.schedule]]`.
//!
//! # Determinism
//! An oracle answers with the *first* candidate of the batch, in batch order, that still
//! fails. Whether it tests the candidates one by one and stops at the first failure, or many
//! at a time on several threads, the answer is the same, so the shrunk schedule does not depend
//! on `--jobs` (only the number of runs does).
//!
//! # The algorithm
//! [`ddmin`] is Zeller and Hildebrandt's delta debugging ("Simplifying and Isolating
//! Failure-Inducing Input", IEEE TSE 2002): split the current units into `n` chunks (first
//! halves, `n = 2`), keep a chunk that fails alone (back to halves), else keep a complement
//! that fails (`n - 1` chunks), else split finer (`2n`), down to single units. The result is
//! 1-minimal: removing any one unit makes the failure go away. [`simplify`] then searches, for
//! each unit in turn, the shortest duration that still fails, then the latest start (the unit
//! moved as a whole), each by a four-way search to [`RESOLUTION_MS`].

pub mod schedule;

/// Which candidate of a batch fails first: the index, in batch order, of the first candidate
/// that still makes the run fail the same way, or `None` when none does.
pub trait Oracle<T> {
    fn first_failing(&mut self, candidates: &[Vec<T>]) -> Option<usize>;
}

impl<T, F: FnMut(&[Vec<T>]) -> Option<usize>> Oracle<T> for F {
    fn first_failing(&mut self, candidates: &[Vec<T>]) -> Option<usize> {
        self(candidates)
    }
}

/// An oracle from a predicate on one candidate (`true`: still fails), asking it about each
/// candidate in order until one fails: the sequential form, for tests and `--jobs 1`.
pub fn sequential<T>(
    mut fails: impl FnMut(&[T]) -> bool,
) -> impl FnMut(&[Vec<T>]) -> Option<usize> {
    move |candidates: &[Vec<T>]| candidates.iter().position(|c| fails(c))
}

/// `items` split into `n` chunks of near-equal size, in order (`1 <= n <= items.len()`); the
/// first `len % n` chunks are one longer.
fn chunks<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let (size, extra) = (items.len() / n, items.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = size + usize::from(i < extra);
        out.push(items[at..at + len].to_vec());
        at += len;
    }
    out
}

/// Delta debugging (ddmin): a 1-minimal subset of `items`, in their order, on which the oracle
/// still fails, assuming it fails on `items` (the caller checks that first). The empty set is
/// asked first: a failure that needs no unit at all shrinks to nothing.
pub fn ddmin<T: Clone>(items: &[T], oracle: &mut impl Oracle<T>) -> Vec<T> {
    if items.is_empty() || oracle.first_failing(&[Vec::new()]).is_some() {
        return Vec::new();
    }
    let mut current = items.to_vec();
    let mut n = 2usize;
    while current.len() >= 2 {
        n = n.min(current.len());
        let parts = chunks(&current, n);
        let mut candidates = parts.clone();
        // With two chunks each complement is the other chunk: asked already.
        if n > 2 {
            for i in 0..n {
                let complement: Vec<T> = parts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, p)| p.iter().cloned())
                    .collect();
                candidates.push(complement);
            }
        }
        match oracle.first_failing(&candidates) {
            Some(i) if i < n => {
                current = candidates.swap_remove(i);
                n = 2;
            }
            Some(i) => {
                current = candidates.swap_remove(i);
                n = (n - 1).max(2);
            }
            None if n >= current.len() => break,
            None => n = (2 * n).min(current.len()),
        }
    }
    current
}

/// Searches shorter durations and later starts to this many simulated milliseconds.
pub const RESOLUTION_MS: u64 = 100;

/// A fault unit as [`simplify`] sees it: a start time and, for a fault that something ends
/// (a restart, a resume, a heal), how long it lasts.
pub trait Timed: Clone {
    /// When it starts, in simulated ms.
    fn start_ms(&self) -> u64;
    /// How long it lasts, in ms; `None` for a fault nothing ends (it lasts to the heal phase).
    fn duration_ms(&self) -> Option<u64>;
    /// The same unit starting at `start_ms`, with the same duration.
    fn with_start(&self, start_ms: u64) -> Self;
    /// The same unit lasting `duration_ms` (only called when [`Timed::duration_ms`] is some).
    fn with_duration(&self, duration_ms: u64) -> Self;
}

/// `ms` rounded down to a multiple of [`RESOLUTION_MS`].
fn round_down(ms: u64) -> u64 {
    ms / RESOLUTION_MS * RESOLUTION_MS
}

/// Shortens each unit's duration, then moves the unit later, keeping every change under which
/// the oracle still fails. `units` must fail as given; `horizon_ms` is the latest time a unit
/// may start or end (the end of the fault phase). Units are treated in order; the result
/// fails too.
pub fn simplify<T: Timed>(units: &[T], horizon_ms: u64, oracle: &mut impl Oracle<T>) -> Vec<T> {
    let mut current = units.to_vec();
    for i in 0..current.len() {
        if let Some(d) = current[i].duration_ms() {
            let unit = current[i].clone();
            let (best, kept) = least_failing(d, |x| unit.with_duration(x), i, &current, oracle);
            if best != d {
                current = kept;
            }
        }
        let unit = current[i].clone();
        let start = unit.start_ms();
        let latest = horizon_ms.saturating_sub(unit.duration_ms().unwrap_or(0));
        if latest > start {
            let (best, kept) =
                latest_failing(start, latest, |x| unit.with_start(x), i, &current, oracle);
            if best != start {
                current = kept;
            }
        }
    }
    current
}

/// `current` with unit `i` replaced by `make(x)` for each `x`.
fn variants<T: Clone>(
    current: &[T],
    i: usize,
    xs: &[u64],
    make: &impl Fn(u64) -> T,
) -> Vec<Vec<T>> {
    xs.iter()
        .map(|x| {
            let mut c = current.to_vec();
            c[i] = make(*x);
            c
        })
        .collect()
}

/// The least `x` in `[0, hi]` (to [`RESOLUTION_MS`]) for which unit `i` made by `make(x)` still
/// fails, knowing that `hi` does; with the units that fail with it.
fn least_failing<T: Clone>(
    hi: u64,
    make: impl Fn(u64) -> T,
    i: usize,
    current: &[T],
    oracle: &mut impl Oracle<T>,
) -> (u64, Vec<T>) {
    let (mut hi, mut kept) = (hi, current.to_vec());
    // The greatest value known to pass, if any.
    let mut passes: Option<u64> = None;
    loop {
        let from = passes.map_or(0, |p| p + RESOLUTION_MS);
        let mut asks: Vec<u64> = (0..4)
            .map(|k| round_down(from + (hi.saturating_sub(from)) * k / 4).max(from))
            .filter(|x| *x < hi)
            .collect();
        asks.dedup();
        if asks.is_empty() {
            return (hi, kept);
        }
        let candidates = variants(current, i, &asks, &make);
        match oracle.first_failing(&candidates) {
            Some(k) => {
                hi = asks[k];
                kept = candidates.into_iter().nth(k).expect("asked");
                if k > 0 {
                    passes = Some(asks[k - 1]);
                }
            }
            None => passes = asks.last().copied(),
        }
    }
}

/// The greatest `x` in `[lo, max]` (to [`RESOLUTION_MS`]) for which unit `i` made by `make(x)`
/// still fails, knowing that `lo` does; with the units that fail with it.
fn latest_failing<T: Clone>(
    lo: u64,
    max: u64,
    make: impl Fn(u64) -> T,
    i: usize,
    current: &[T],
    oracle: &mut impl Oracle<T>,
) -> (u64, Vec<T>) {
    let (mut lo, mut kept) = (lo, current.to_vec());
    // The least value known to pass, if any.
    let mut passes: Option<u64> = None;
    loop {
        let to = passes.map_or(max, |p| p.saturating_sub(RESOLUTION_MS));
        if to < lo + RESOLUTION_MS {
            return (lo, kept);
        }
        let mut asks: Vec<u64> = (0..4)
            .map(|k| to - (to - lo) * k / 4)
            .map(|x| if x == max { x } else { round_down(x) })
            .filter(|x| *x > lo)
            .collect();
        asks.dedup();
        if asks.is_empty() {
            return (lo, kept);
        }
        let candidates = variants(current, i, &asks, &make);
        match oracle.first_failing(&candidates) {
            Some(k) => {
                lo = asks[k];
                kept = candidates.into_iter().nth(k).expect("asked");
                if k > 0 {
                    passes = Some(asks[k - 1]);
                }
            }
            None => passes = asks.last().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Counts the candidates an oracle was asked about.
    fn counting<'a, T: Clone>(
        fails: impl Fn(&[T]) -> bool + 'a,
        runs: &'a Cell<u64>,
    ) -> impl FnMut(&[Vec<T>]) -> Option<usize> + 'a {
        move |candidates: &[Vec<T>]| {
            for (i, c) in candidates.iter().enumerate() {
                runs.set(runs.get() + 1);
                if fails(c) {
                    return Some(i);
                }
            }
            None
        }
    }

    #[test]
    fn chunks_cover_the_items_in_order() {
        let items: Vec<u32> = (0..7).collect();
        assert_eq!(
            chunks(&items, 3),
            vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]
        );
        assert_eq!(chunks(&items, 7).len(), 7);
    }

    #[test]
    fn ddmin_finds_the_three_items_a_failure_needs() {
        let items: Vec<u32> = (0..100).collect();
        let needs = [13, 42, 77];
        let runs = Cell::new(0);
        let mut oracle = counting(|c: &[u32]| needs.iter().all(|x| c.contains(x)), &runs);
        let min = ddmin(&items, &mut oracle);
        assert_eq!(min, vec![13, 42, 77]);
        assert!(runs.get() < 200, "{} runs", runs.get());
    }

    #[test]
    fn ddmin_keeps_one_of_interchangeable_items_and_is_one_minimal() {
        // Fails with any two even numbers: the result has exactly two, and removing either
        // passes (1-minimal).
        let items: Vec<u32> = (0..20).collect();
        let fails = |c: &[u32]| c.iter().filter(|x| *x % 2 == 0).count() >= 2;
        let min = ddmin(&items, &mut sequential(fails));
        assert_eq!(min.len(), 2);
        for i in 0..min.len() {
            let mut less = min.clone();
            less.remove(i);
            assert!(!fails(&less));
        }
    }

    #[test]
    fn ddmin_of_a_failure_that_needs_nothing_is_empty() {
        let items: Vec<u32> = (0..10).collect();
        let runs = Cell::new(0);
        let mut oracle = counting(|_: &[u32]| true, &runs);
        assert!(ddmin(&items, &mut oracle).is_empty());
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn ddmin_answers_the_same_whatever_the_batching() {
        // An oracle that tests a whole batch at once (as parallel workers do) and reports the
        // first failing candidate gives the sequential result.
        let items: Vec<u32> = (0..40).collect();
        let fails = |c: &[u32]| c.contains(&3) && (c.contains(&17) || c.contains(&31));
        let batched = |candidates: &[Vec<u32>]| {
            let answers: Vec<bool> = candidates.iter().map(|c| fails(c)).collect();
            answers.iter().position(|a| *a)
        };
        let mut batched = batched;
        assert_eq!(
            ddmin(&items, &mut batched),
            ddmin(&items, &mut sequential(fails))
        );
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Span {
        start: u64,
        duration: Option<u64>,
    }

    impl Timed for Span {
        fn start_ms(&self) -> u64 {
            self.start
        }
        fn duration_ms(&self) -> Option<u64> {
            self.duration
        }
        fn with_start(&self, start: u64) -> Self {
            Span { start, ..*self }
        }
        fn with_duration(&self, d: u64) -> Self {
            Span {
                duration: Some(d),
                ..*self
            }
        }
    }

    #[test]
    fn simplify_shortens_then_moves_later_while_it_still_fails() {
        // Fails while the span starts before 7 000 ms and lasts at least 1 250 ms, and the
        // second (unended) one starts by 15 000 ms.
        let fails = |c: &[Span]| {
            c[0].start < 7_000 && c[0].duration.unwrap() >= 1_250 && c[1].start <= 15_000
        };
        let units = vec![
            Span {
                start: 2_000,
                duration: Some(6_000),
            },
            Span {
                start: 3_000,
                duration: None,
            },
        ];
        let runs = Cell::new(0);
        let mut oracle = counting(fails, &runs);
        let out = simplify(&units, 20_000, &mut oracle);
        assert!(fails(&out));
        let d = out[0].duration.unwrap();
        assert!((1_250..1_250 + 2 * RESOLUTION_MS).contains(&d), "{out:?}");
        assert!(
            (7_000 - 2 * RESOLUTION_MS..7_000).contains(&out[0].start),
            "{out:?}"
        );
        assert!(
            (15_000 - 2 * RESOLUTION_MS..=15_000).contains(&out[1].start),
            "{out:?}"
        );
        assert!(runs.get() < 60, "{} runs", runs.get());
    }

    #[test]
    fn simplify_keeps_a_unit_that_fails_only_as_it_is() {
        let units = vec![Span {
            start: 1_000,
            duration: Some(500),
        }];
        let fails = |c: &[Span]| c[0] == units[0];
        let out = simplify(&units, 20_000, &mut sequential(fails));
        assert_eq!(out, units);
    }

    #[test]
    fn simplify_stays_inside_the_horizon() {
        let units = vec![Span {
            start: 1_000,
            duration: Some(3_000),
        }];
        let out = simplify(&units, 10_000, &mut sequential(|_: &[Span]| true));
        assert_eq!(out[0].duration, Some(0));
        assert!(out[0].start <= 10_000 && out[0].start >= 10_000 - RESOLUTION_MS);
    }
}

//! Load errors: [`ScenarioError`], shown as `FILE:LINE:COL: KEY: message`, and how a TOML
//! or validation error is placed at the line, column and dotted key of the scenario file.

use super::*;

/// What went wrong, for callers that react differently (the CLI, `bad_input` tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScenarioErrorKind {
    /// The file could not be read.
    Io,
    /// Not valid TOML.
    Syntax,
    /// A key the schema (or Kafka's config tables) does not know.
    UnknownKey,
    /// A value or combination that is wrong.
    Invalid,
    /// Valid, but the feature is not implemented yet.
    NotSupportedYet,
}

/// A scenario that cannot be loaded. Displays as `FILE:LINE:COL: KEY: message` (parts left
/// out when unknown); an unreadable file as `cannot read FILE: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub kind: ScenarioErrorKind,
    /// The file name as given.
    pub file: String,
    /// 1-based line and column (in chars) of the offending key or value.
    pub line_col: Option<(usize, usize)>,
    /// TOML path of the offending key: `topics[0].replication_factor`,
    /// `producers[1].config.acks`, `cluster.broker_config."min.insync.replicas"`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ScenarioErrorKind::Io {
            return f.write_str(&self.message);
        }
        f.write_str(&self.file)?;
        if let Some((l, c)) = self.line_col {
            write!(f, ":{l}:{c}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Builds errors against one file's text.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    pub(super) fn err(
        &self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let message = message.into();
        let kind = if message.starts_with("not supported yet") {
            ScenarioErrorKind::NotSupportedYet
        } else {
            ScenarioErrorKind::Invalid
        };
        let key = key.into();
        ScenarioError {
            kind,
            file: self.file.to_string(),
            line_col: span.map(|s| line_col(self.text, s.start)),
            key: if key.is_empty() { None } else { Some(key) },
            message,
        }
    }

    pub(super) fn at<T>(
        &self,
        v: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.err(Some(v.span()), key, message)
    }

    /// A config error, located at the key (unknown key) or its value.
    pub(super) fn config_err(&self, props: &RawProps, path: &str, e: ConfigError) -> ScenarioError {
        let entry = props.get_ref().iter().find(|(k, _)| k.get_ref() == &e.key);
        let unknown = e.message.starts_with("unknown ");
        let span = match entry {
            Some((k, _)) if unknown => k.span(),
            Some((_, v)) => v.span(),
            None => props.span(),
        };
        let mut err = self.err(
            Some(span),
            format!("{path}.{}", toml_key(&e.key)),
            e.message,
        );
        if unknown {
            err.kind = ScenarioErrorKind::UnknownKey;
        }
        err
    }
}

/// 1-based line and char column of byte `offset`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// A key as written in a TOML path: quoted when it is not a bare key.
pub(super) fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("\"{k}\"")
    }
}

/// The table header in force at `offset`: (name, is array of tables, index among headers of
/// that name). `None` at the top level.
pub(super) fn table_at(text: &str, offset: usize) -> Option<(String, bool, usize)> {
    let mut current = None;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        pos += line.len();
        let t = line.split('#').next().unwrap_or("").trim();
        let (array, inner) =
            if let Some(i) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
                (true, i)
            } else if let Some(i) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                (false, i)
            } else {
                continue;
            };
        let name: String = inner.trim().to_string();
        let header_like = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '"')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c));
        if !header_like {
            continue;
        }
        let n = counts.entry(name.clone()).or_insert(0);
        *n += 1;
        current = Some((name, array, *n - 1));
    }
    current
}

/// `topics[1]` / `cluster.broker_config` / "" for a table header.
pub(super) fn table_path(t: &Option<(String, bool, usize)>) -> String {
    match t {
        Some((name, true, i)) => format!("{name}[{i}]"),
        Some((name, false, _)) => name.clone(),
        None => String::new(),
    }
}

/// `[[topics]]` / `[cluster]` / `the top level`.
pub(super) fn table_display(t: &Option<(String, bool, usize)>) -> String {
    match t {
        Some((name, true, _)) => format!("[[{name}]]"),
        Some((name, false, _)) => format!("[{name}]"),
        None => "the top level".to_string(),
    }
}

pub(super) fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}.{b}"),
    }
}

/// The key assigned on the line containing `offset`, before `offset`, with the keys of the
/// inline tables it sits in (`config.acks` in `config = { acks = 2 }` when `offset` points
/// at `2`).
pub(super) fn line_key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[start..offset];
    let mut keys = Vec::new();
    for part in before.split('{') {
        let segs: Vec<&str> = part.split('=').collect();
        if segs.len() < 2 {
            continue;
        }
        let seg = segs[segs.len() - 2];
        let key = seg.rsplit(',').next().unwrap_or(seg).trim();
        if !key.is_empty() {
            keys.push(key.to_string());
        }
    }
    if keys.is_empty() {
        None
    } else {
        Some(keys.join("."))
    }
}

/// Turns a TOML / serde error into a [`ScenarioError`].
pub(super) fn from_toml_error(ctx: &Ctx<'_>, e: &toml::de::Error) -> ScenarioError {
    let span = e.span();
    let raw = e.message().trim();
    let table = span.as_ref().and_then(|s| table_at(ctx.text, s.start));
    let mut parent_table = table.clone();
    if let Some(s) = &span {
        // An error on a header line itself (`[[producer]]`) belongs to the parent table.
        let line_start = ctx.text[..s.start.min(ctx.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        if ctx.text[line_start..].trim_start().starts_with('[') {
            parent_table = table.clone().and_then(|(name, _, _)| {
                name.rsplit_once('.')
                    .map(|(parent, _)| (parent.to_string(), false, 0))
            });
        }
    }
    let mut err = ScenarioError {
        kind: ScenarioErrorKind::Syntax,
        file: ctx.file.to_string(),
        line_col: span.as_ref().map(|s| line_col(ctx.text, s.start)),
        key: None,
        message: raw
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    };
    let ticked: Vec<&str> = raw.split('`').skip(1).step_by(2).collect();
    if raw.starts_with("unknown field") && !ticked.is_empty() {
        let key = ticked[0];
        let expected = &ticked[1..];
        let mut path = table_path(&parent_table);
        let mut display = table_display(&parent_table);
        if expected == ["node", "kind"] {
            path = join_path(&path, "disk-fault");
            display = "disk-fault".to_string();
        }
        err.kind = ScenarioErrorKind::UnknownKey;
        err.key = Some(join_path(&path, &toml_key(key)));
        err.message = match closest_match(key, expected.iter().copied()) {
            Some(s) => format!("unknown key \"{key}\" in {display}; did you mean \"{s}\"?"),
            None => format!(
                "unknown key \"{key}\" in {display}; expected one of: {}",
                expected.join(", ")
            ),
        };
    } else if raw.starts_with("missing field") && !ticked.is_empty() {
        err.kind = ScenarioErrorKind::Invalid;
        err.key = Some(table_path(&table)).filter(|p| !p.is_empty());
        err.message = format!("missing key \"{}\" in {}", ticked[0], table_display(&table));
    } else if raw.starts_with("invalid type")
        || raw.starts_with("invalid value")
        || raw.starts_with("invalid length")
        || raw.starts_with("unknown variant")
        || raw.starts_with("data did not match")
    {
        err.kind = ScenarioErrorKind::Invalid;
        let line_key = span.as_ref().and_then(|s| line_key_at(ctx.text, s.start));
        let path = join_path(&table_path(&table), line_key.as_deref().unwrap_or(""));
        err.key = Some(path).filter(|p| !p.is_empty());
        if raw.starts_with("data did not match") {
            err.message = "expected a string, number, boolean or array".to_string();
        }
    }
    err
}

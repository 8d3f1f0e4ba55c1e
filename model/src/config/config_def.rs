//! The machinery of the key tables and the parsing of values, as Kafka's `ConfigDef` does
//! it: types and validators, unknown keys with the closest match, the conversion of a
//! property as written, and the validated set of one config's properties.

use super::*;

/// Which configuration a key belongs to; names the kind in "unknown producer config ..." errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigKind {
    /// `server.properties` (scenario `[cluster.broker_config]`).
    Broker,
    /// Topic-level overrides (scenario `[[topics]] config`).
    Topic,
    /// `ProducerConfig` (scenario `[[producers]] config`).
    Producer,
    /// `ConsumerConfig` (scenario `[[consumers]] config`).
    Consumer,
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigKind::Broker => "broker",
            ConfigKind::Topic => "topic",
            ConfigKind::Producer => "producer",
            ConfigKind::Consumer => "consumer",
        })
    }
}

/// `ConfigDef.Type` plus its validator.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    Bool,
    /// 32-bit integer within [min, max].
    Int(i64, i64),
    /// 64-bit integer within [min, max].
    Long(i64, i64),
    /// Any string.
    Str,
    /// `ValidString.in(..)`.
    OneOf(&'static [&'static str]),
    /// `ValidList.in(..)`: a comma-separated list (or TOML array) of these.
    ListOf(&'static [&'static str]),
    /// A list of anything (class names).
    List,
    /// A class name (`ConfigDef.Type.CLASS`) among those ksim provides.
    Class(&'static [&'static str]),
    /// A list of class names (`ConfigDef.Type.LIST` of classes) among those ksim provides.
    ClassList(&'static [&'static str]),
}

pub(super) const I32: i64 = i32::MAX as i64;

pub(super) const I64: i64 = i64::MAX;

/// `ms` settings: negative values are refused.
pub(super) const MS: Ty = Ty::Long(0, I64);

pub(super) const MS32: Ty = Ty::Int(0, I32);

pub(super) struct KeyDef {
    name: &'static str,
    ty: Ty,
}

pub(super) const fn k(name: &'static str, ty: Ty) -> KeyDef {
    KeyDef { name, ty }
}

pub(super) fn key_defs(kind: ConfigKind) -> &'static [KeyDef] {
    match kind {
        ConfigKind::Broker => BROKER_KEYS,
        ConfigKind::Topic => TOPIC_KEYS,
        ConfigKind::Producer => PRODUCER_KEYS,
        ConfigKind::Consumer => CONSUMER_KEYS,
    }
}

/// Every key a config of this kind accepts (including the not-supported-yet ones).
pub fn known_keys(kind: ConfigKind) -> Vec<&'static str> {
    key_defs(kind).iter().map(|d| d.name).collect()
}

/// Levenshtein edit distance (on chars).
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word` (edit distance, case-insensitive), if it is close enough to
/// be a plausible typo: at most a third of the word's length, and at least 2 edits allowed.
pub fn closest_match<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The message for an unknown key: `unknown producer config "x"; did you mean "y"?`.
pub(super) fn unknown_key(kind: ConfigKind, key: &str) -> ConfigError {
    let synonym = match kind {
        ConfigKind::Topic => TOPIC_SYNONYMS
            .iter()
            .find(|(b, _)| *b == key)
            .map(|(_, t)| *t),
        _ => None,
    };
    let suggestion = synonym.or_else(|| closest_match(key, key_defs(kind).iter().map(|d| d.name)));
    let message = match suggestion {
        Some(s) => format!("unknown {kind} config \"{key}\"; did you mean \"{s}\"?"),
        None => format!("unknown {kind} config \"{key}\""),
    };
    ConfigError {
        key: key.to_string(),
        message,
    }
}

/// A value after type conversion and validation.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Bool(bool),
    Num(i64),
    Str(String),
    List(Vec<String>),
}

impl Val {
    /// Canonical text, compared against [`NotSupportedYet::allowed`].
    pub(super) fn canonical(&self) -> String {
        match self {
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => n.to_string(),
            Val::Str(s) => s.clone(),
            Val::List(l) => l.join(","),
        }
    }
}

pub(super) fn type_name(v: &PropValue) -> &'static str {
    match v {
        PropValue::Bool(_) => "boolean",
        PropValue::Int(_) => "integer",
        PropValue::Float(_) => "float",
        PropValue::Str(_) => "string",
        PropValue::List(_) => "list",
    }
}

/// `ConfigException(name, value, message)`: `Invalid value V for configuration K: message`.
pub(super) fn invalid(key: &str, value: &PropValue, message: &str) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: format!("Invalid value {value} for configuration {key}: {message}"),
    }
}

pub(super) fn parse_number(
    key: &str,
    v: &PropValue,
    min: i64,
    max: i64,
    bits: u32,
) -> Result<i64, ConfigError> {
    let type_label = if bits == 32 { "INT" } else { "LONG" };
    let n = match v {
        PropValue::Int(i) => *i,
        PropValue::Str(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| invalid(key, v, &format!("Not a number of type {type_label}")))?,
        other => {
            return Err(invalid(
                key,
                v,
                &format!(
                    "Expected value to be a {bits}-bit integer, but it was a {}",
                    type_name(other)
                ),
            ))
        }
    };
    if bits == 32 && (n < i32::MIN as i64 || n > i32::MAX as i64) {
        return Err(invalid(
            key,
            v,
            &format!("Not a number of type {type_label}"),
        ));
    }
    if n < min {
        return Err(invalid(key, v, &format!("Value must be at least {min}")));
    }
    if n > max {
        return Err(invalid(
            key,
            v,
            &format!("Value must be no more than {max}"),
        ));
    }
    Ok(n)
}

/// A `ms` setting (a non-negative 64-bit integer, `ConfigDef.Type.LONG` at least 0) outside
/// the four key tables: a processor's `commit.interval.ms`, whose home is Kafka Streams'
/// `StreamsConfig` rather than a client config.
pub fn parse_ms(key: &str, v: &PropValue) -> Result<u64, ConfigError> {
    parse_number(key, v, 0, I64, 64).map(|n| n as u64)
}

pub(super) fn as_string(key: &str, v: &PropValue) -> Result<String, ConfigError> {
    match v {
        PropValue::Str(s) => Ok(s.trim().to_string()),
        PropValue::Int(_) | PropValue::Bool(_) | PropValue::Float(_) => Ok(v.to_string()),
        PropValue::List(_) => Err(invalid(
            key,
            v,
            "Expected value to be a string, but it was a list",
        )),
    }
}

pub(super) fn as_list(key: &str, v: &PropValue) -> Result<Vec<String>, ConfigError> {
    match v {
        PropValue::Str(s) if s.trim().is_empty() => Ok(Vec::new()),
        PropValue::Str(s) => Ok(s.split(',').map(|p| p.trim().to_string()).collect()),
        PropValue::List(items) => items
            .iter()
            .map(|i| match i {
                PropValue::List(_) => Err(invalid(key, v, "Expected a comma separated list.")),
                other => as_string(key, other),
            })
            .collect(),
        _ => Err(invalid(key, v, "Expected a comma separated list.")),
    }
}

pub(super) fn parse_value(key: &str, ty: Ty, v: &PropValue) -> Result<Val, ConfigError> {
    Ok(match ty {
        Ty::Bool => match v {
            PropValue::Bool(b) => Val::Bool(*b),
            PropValue::Str(s) if s.trim().eq_ignore_ascii_case("true") => Val::Bool(true),
            PropValue::Str(s) if s.trim().eq_ignore_ascii_case("false") => Val::Bool(false),
            _ => return Err(invalid(key, v, "Expected value to be either true or false")),
        },
        Ty::Int(min, max) => Val::Num(parse_number(key, v, min, max, 32)?),
        Ty::Long(min, max) => Val::Num(parse_number(key, v, min, max, 64)?),
        Ty::Str => Val::Str(as_string(key, v)?),
        Ty::OneOf(valid) => {
            let s = as_string(key, v)?;
            if !valid.contains(&s.as_str()) {
                return Err(invalid(
                    key,
                    v,
                    &format!("String must be one of: {}", valid.join(", ")),
                ));
            }
            Val::Str(s)
        }
        Ty::ListOf(valid) => {
            let l = as_list(key, v)?;
            if let Some(bad) = l.iter().find(|s| !valid.contains(&s.as_str())) {
                return Err(invalid(
                    key,
                    &PropValue::Str(bad.clone()),
                    &format!("String must be one of: {}", valid.join(", ")),
                ));
            }
            Val::List(l)
        }
        Ty::List => Val::List(as_list(key, v)?),
        Ty::Class(valid) => {
            let s = as_string(key, v)?;
            check_class(key, &s, valid)?;
            Val::Str(s.trim().to_string())
        }
        Ty::ClassList(valid) => {
            let l = as_list(key, v)?;
            for class in &l {
                check_class(key, class, valid)?;
            }
            Val::List(l)
        }
    })
}

/// Kafka's `ConfigDef.parseType` for a class it cannot load (`Class X could not be found.`),
/// followed by the classes this simulation has.
pub(super) fn check_class(key: &str, class: &str, valid: &[&str]) -> Result<(), ConfigError> {
    if valid.contains(&class.trim()) {
        return Ok(());
    }
    Err(invalid(
        key,
        &PropValue::Str(class.to_string()),
        &format!(
            "Class {class} could not be found. ksim provides: {}",
            valid.join(", ")
        ),
    ))
}

/// The validated properties of one config: known keys only, values converted.
pub(super) struct Parsed {
    vals: BTreeMap<&'static str, Val>,
}

impl Parsed {
    /// Checks every key and value of `props` against the table of `kind`, then the
    /// [`NOT_SUPPORTED_YET`] rows.
    pub(super) fn new(kind: ConfigKind, props: &Properties) -> Result<Parsed, ConfigError> {
        let defs = key_defs(kind);
        let mut vals = BTreeMap::new();
        for (key, value) in props {
            let def = defs
                .iter()
                .find(|d| d.name == key)
                .ok_or_else(|| unknown_key(kind, key))?;
            vals.insert(def.name, parse_value(key, def.ty, value)?);
        }
        for row in NOT_SUPPORTED_YET.iter().filter(|r| r.kind == kind) {
            let Some(val) = vals.get(row.key) else {
                continue;
            };
            if row.only_with.is_some_and(|other| !vals.contains_key(other)) {
                continue;
            }
            let canonical = val.canonical();
            if !row.allowed.contains(&canonical.as_str()) {
                let shown = match val {
                    Val::Str(_) | Val::List(_) => format!("\"{canonical}\""),
                    _ => canonical,
                };
                return Err(ConfigError {
                    key: row.key.to_string(),
                    message: format!("not supported yet: {} = {shown} ({})", row.key, row.reason),
                });
            }
        }
        Ok(Parsed { vals })
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.vals.contains_key(key)
    }

    pub(super) fn bool(&self, key: &str) -> Option<bool> {
        match self.vals.get(key) {
            Some(Val::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub(super) fn num(&self, key: &str) -> Option<i64> {
        match self.vals.get(key) {
            Some(Val::Num(n)) => Some(*n),
            _ => None,
        }
    }

    pub(super) fn list(&self, key: &str) -> Option<&[String]> {
        match self.vals.get(key) {
            Some(Val::List(l)) => Some(l),
            _ => None,
        }
    }

    pub(super) fn str(&self, key: &str) -> Option<&str> {
        match self.vals.get(key) {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        }
    }
}

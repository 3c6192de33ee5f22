//! talosctl's command grammar as data (`talos-docker/grammar/talosctl-v1.*.yaml`, one table per
//! supported minor, generated from talosctl's own command definitions), and a reading of an
//! argument list against it that follows cobra's command lookup and pflag's flag parsing, with
//! their error messages. Shared by the fake talosctl and the tests that check every invocation.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The committed tables, by minor.
pub const TABLES: &[(&str, &str)] = &[
    ("v1.10", include_str!("../../grammar/talosctl-v1.10.yaml")),
    ("v1.11", include_str!("../../grammar/talosctl-v1.11.yaml")),
    ("v1.12", include_str!("../../grammar/talosctl-v1.12.yaml")),
    ("v1.13", include_str!("../../grammar/talosctl-v1.13.yaml")),
    ("v1.14", include_str!("../../grammar/talosctl-v1.14.yaml")),
];

/// What one talosctl release accepts, for the commands talos-docker runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grammar {
    /// The tag the table was read from, e.g. `v1.11.6`.
    pub talosctl: String,
    pub commit: String,
    /// The cobra and pflag releases in its go.mod: they decide lookup, parsing and messages.
    pub cobra: String,
    pub pflag: String,
    pub commands: Vec<Command>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The full command path, e.g. `talosctl gen secrets`.
    pub path: String,
    /// Where the command is defined, relative to the repository root.
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Whether it has a Run/RunE; a command without one only prints its help.
    pub runnable: bool,
    /// Its `Args` validator; absent means cobra's legacy rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Args>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// Flags this command passes down to its subcommands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persistent_flags: Vec<Flag>,
    /// Every subcommand talosctl documents (`website/content/<minor>/reference/cli.md`), modelled
    /// here or not: a known command the table does not model is refused as such, not as unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcommands: Vec<String>,
}

/// cobra's positional-argument validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Args {
    /// `cobra.NoArgs`
    None,
    /// `cobra.ArbitraryArgs`
    Arbitrary,
    /// `cobra.ExactArgs(n)`
    Exact(usize),
    /// `cobra.MinimumNArgs(n)`
    Minimum(usize),
    /// `cobra.MaximumNArgs(n)`
    Maximum(usize),
    /// `cobra.RangeArgs(min, max)`
    Range(usize, usize),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shorthand: Option<String>,
    #[serde(rename = "type")]
    pub kind: FlagType,
    /// Hidden flags are accepted like any other; only the help leaves them out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// `file:line` of the declaration.
    pub declared: String,
}

/// pflag's value types, named as its `Value.Type()` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlagType {
    #[serde(rename = "bool")]
    Bool,
    #[serde(rename = "string")]
    String,
    #[serde(rename = "stringSlice")]
    StringSlice,
    #[serde(rename = "stringArray")]
    StringArray,
    #[serde(rename = "duration")]
    Duration,
}

impl FlagType {
    /// The type word cobra's generated docs print after a flag (none for bool).
    pub fn doc_word(self) -> Option<&'static str> {
        match self {
            FlagType::Bool => None,
            FlagType::String => Some("string"),
            FlagType::StringSlice => Some("strings"),
            FlagType::StringArray => Some("stringArray"),
            FlagType::Duration => Some("duration"),
        }
    }
}

/// The table for a talosctl version such as `v1.11.5` or `v1.14.0-rc.1`, by its minor.
pub fn for_version(version: &str) -> Option<Grammar> {
    let minor = minor_of(version)?;
    let (_, text) = TABLES.iter().find(|(m, _)| *m == minor)?;
    Some(load(text).unwrap_or_else(|e| panic!("grammar table {minor} does not load: {e}")))
}

/// `v1.11` of `v1.11.5`.
pub fn minor_of(version: &str) -> Option<String> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    let mut parts = bare.split(['.', '-']);
    let major = parts.next()?;
    let minor = parts.next()?;
    (major.chars().all(|c| c.is_ascii_digit()) && minor.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("v{major}.{minor}"))
}

pub fn load(text: &str) -> Result<Grammar, String> {
    let g: Grammar = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if g.command("talosctl").is_none() {
        return Err("no root command `talosctl`".into());
    }
    Ok(g)
}

/// An argument list talosctl accepted: the command it runs and what it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The command path without `talosctl`, e.g. `gen config`.
    pub command: String,
    /// Every flag set, in order, by its long name; bools as `true`/`false`.
    pub flags: Vec<(String, String)>,
    pub args: Vec<String>,
}

impl Parsed {
    /// The last value given for a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.value(name).is_some()
    }

    /// A bool flag's value, `default` when not given.
    pub fn bool(&self, name: &str, default: bool) -> bool {
        self.value(name)
            .map_or(default, |v| parse_bool(v) == Some(true))
    }

    /// Every value of a repeatable flag; a stringSlice splits each value on commas.
    pub fn values(&self, name: &str, kind: FlagType) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| match kind {
                FlagType::StringSlice if v.is_empty() => Vec::new(),
                FlagType::StringSlice => v.split(',').map(str::to_string).collect(),
                _ => vec![v.clone()],
            })
            .collect()
    }
}

/// Why talosctl would not run an argument list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// cobra or pflag refused it: talosctl prints the message (its root command silences
    /// cobra's own `Error:` line), a blank line and the usage, and exits 1.
    Usage { message: String, command: String },
    /// `-h`/`--help`, or a command that only groups others: talosctl prints help and exits 0.
    Help { command: String },
    /// A real talosctl command that this table does not model.
    NotModelled { command: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Usage { message, .. } => f.write_str(message),
            Refusal::Help { command } => write!(f, "help for {command}"),
            Refusal::NotModelled { command } => write!(
                f,
                "`{command}` is a talosctl command that the grammar table does not model"
            ),
        }
    }
}

impl Grammar {
    pub fn command(&self, path: &str) -> Option<&Command> {
        self.commands.iter().find(|c| c.path == path)
    }

    fn parent_of(&self, cmd: &Command) -> Option<&Command> {
        let (parent, _) = cmd.path.rsplit_once(' ')?;
        self.command(parent)
    }

    fn children<'a>(&'a self, cmd: &'a Command) -> impl Iterator<Item = &'a Command> + 'a {
        self.commands.iter().filter(move |c| {
            c.path
                .strip_prefix(cmd.path.as_str())
                .and_then(|rest| rest.strip_prefix(' '))
                .is_some_and(|name| !name.contains(' '))
        })
    }

    /// A child by name or alias (cobra's `findNext`, without prefix matching, which talosctl
    /// leaves off).
    fn child<'a>(&'a self, cmd: &'a Command, word: &str) -> Option<&'a Command> {
        self.children(cmd)
            .find(|c| c.name() == word || c.aliases.iter().any(|a| a == word))
    }

    fn has_subcommands(&self, cmd: &Command) -> bool {
        !cmd.subcommands.is_empty() || self.children(cmd).next().is_some()
    }

    /// The flags a command parses: its own, its persistent ones, and every ancestor's
    /// persistent ones (cobra's `mergePersistentFlags`).
    pub fn flags_of<'a>(&'a self, cmd: &'a Command) -> Vec<&'a Flag> {
        let mut all: Vec<&Flag> = cmd.flags.iter().chain(&cmd.persistent_flags).collect();
        let mut cur = self.parent_of(cmd);
        while let Some(p) = cur {
            for f in &p.persistent_flags {
                if !all.iter().any(|g| g.name == f.name) {
                    all.push(f);
                }
            }
            cur = self.parent_of(p);
        }
        all
    }

    /// Reads `argv` (without the program name) as talosctl does: cobra finds the command by
    /// stripping what look like flags, then pflag parses every flag of that command wherever
    /// it stands, then cobra checks help, runnability and the positional arguments.
    pub fn parse(&self, argv: &[String]) -> Result<Parsed, Refusal> {
        let root = self.command("talosctl").expect("checked by load");
        let mut cmd = root;
        let mut rest: Vec<String> = argv.to_vec();
        loop {
            let flags = self.flags_of(cmd);
            let words = strip_flags(&rest, &flags);
            let Some(next) = words.first() else { break };
            if let Some(child) = self.child(cmd, next) {
                rest = args_minus_first(&rest, next, &flags);
                cmd = child;
                continue;
            }
            if cmd.subcommands.iter().any(|s| s == next) {
                return Err(Refusal::NotModelled {
                    command: format!("{} {next}", cmd.path),
                });
            }
            break;
        }
        if cmd.args.is_none() && self.has_subcommands(cmd) && cmd.path == root.path {
            let words = strip_flags(&rest, &self.flags_of(cmd));
            if let Some(first) = words.first() {
                return Err(Refusal::Usage {
                    message: format!(
                        "unknown command {} for {}{}",
                        go_quote(first),
                        go_quote(&cmd.path),
                        self.suggestions(cmd, first)
                    ),
                    command: cmd.path.clone(),
                });
            }
        }

        let mut flags = self.flags_of(cmd);
        let help = Flag {
            name: "help".into(),
            shorthand: Some("h".into()),
            kind: FlagType::Bool,
            hidden: false,
            declared: "cobra InitDefaultHelpFlag".into(),
        };
        flags.push(&help);
        let usage = |message: String| Refusal::Usage {
            message,
            command: cmd.path.clone(),
        };
        let (set, positional) = parse_flags(&rest, &flags).map_err(usage)?;
        if set.iter().any(|(n, v)| n == "help" && v == "true") || !cmd.runnable {
            return Err(Refusal::Help {
                command: cmd.path.clone(),
            });
        }
        check_args(cmd, &positional).map_err(usage)?;
        Ok(Parsed {
            command: cmd
                .path
                .strip_prefix("talosctl")
                .unwrap_or(&cmd.path)
                .trim_start()
                .to_string(),
            flags: set,
            args: positional,
        })
    }

    /// cobra's "Did you mean this?" block: subcommands within Levenshtein distance 2
    /// (case-insensitive) or starting with what was typed.
    fn suggestions(&self, cmd: &Command, typed: &str) -> String {
        let names: BTreeSet<String> = self
            .children(cmd)
            .map(|c| c.name().to_string())
            .chain(cmd.subcommands.iter().cloned())
            .collect();
        let lower = typed.to_lowercase();
        let found: Vec<&String> = names
            .iter()
            .filter(|n| levenshtein(&lower, &n.to_lowercase()) <= 2 || n.starts_with(&lower))
            .collect();
        if found.is_empty() {
            return String::new();
        }
        let mut s = String::from("\n\nDid you mean this?\n");
        for n in found {
            s.push_str(&format!("\t{n}\n"));
        }
        s
    }

    /// A short usage block in cobra's layout, for what follows a refusal.
    pub fn usage(&self, path: &str) -> String {
        let Some(cmd) = self.command(path) else {
            return String::new();
        };
        let mut s = format!("Usage:\n  {} [flags]\n", cmd.path);
        let line = |f: &Flag| {
            let short = f
                .shorthand
                .as_ref()
                .map_or("    ".to_string(), |s| format!("-{s}, "));
            let word = f
                .kind
                .doc_word()
                .map(|w| format!(" {w}"))
                .unwrap_or_default();
            format!("  {short}--{}{word}\n", f.name)
        };
        let own: Vec<&Flag> = cmd
            .flags
            .iter()
            .chain(&cmd.persistent_flags)
            .filter(|f| !f.hidden)
            .collect();
        s.push_str("\nFlags:\n");
        s.push_str(&format!("  -h, --help   help for {}\n", cmd.name()));
        for f in own {
            s.push_str(&line(f));
        }
        let inherited: Vec<&Flag> = self
            .flags_of(cmd)
            .into_iter()
            .filter(|f| !f.hidden && !cmd.flags.contains(f) && !cmd.persistent_flags.contains(f))
            .collect();
        if !inherited.is_empty() {
            s.push_str("\nGlobal Flags:\n");
            for f in inherited {
                s.push_str(&line(f));
            }
        }
        s
    }
}

impl Command {
    pub fn name(&self) -> &str {
        self.path.rsplit(' ').next().unwrap_or(&self.path)
    }
}

fn lookup_long<'a>(flags: &[&'a Flag], name: &str) -> Option<&'a Flag> {
    flags.iter().copied().find(|f| f.name == name)
}

fn lookup_short<'a>(flags: &[&'a Flag], c: char) -> Option<&'a Flag> {
    flags
        .iter()
        .copied()
        .find(|f| f.shorthand.as_deref().and_then(|s| s.chars().next()) == Some(c))
}

/// cobra's `stripFlags`: the words left after removing flags and what it takes to be their
/// values. A flag it does not know is assumed to take a value.
fn strip_flags(args: &[String], flags: &[&Flag]) -> Vec<String> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        i += 1;
        if s == "--" {
            break;
        }
        let long_takes_value = s.starts_with("--")
            && !s.contains('=')
            && lookup_long(flags, &s[2..]).is_none_or(|f| f.kind != FlagType::Bool);
        let short_takes_value = s.starts_with('-')
            && !s.contains('=')
            && s.len() == 2
            && s[1..]
                .chars()
                .next()
                .and_then(|c| lookup_short(flags, c))
                .is_none_or(|f| f.kind != FlagType::Bool);
        if long_takes_value || short_takes_value {
            if args.len() - i <= 1 {
                break;
            }
            i += 1;
            continue;
        }
        if !s.is_empty() && !s.starts_with('-') {
            words.push(s.clone());
        }
    }
    words
}

/// cobra's `argsMinusFirstX`: `args` without the first `word` that is not a flag's value.
fn args_minus_first(args: &[String], word: &str, flags: &[&Flag]) -> Vec<String> {
    let mut pos = 0;
    while pos < args.len() {
        let s = &args[pos];
        if s == "--" {
            break;
        }
        let takes_value = (s.starts_with("--")
            && !s.contains('=')
            && lookup_long(flags, &s[2..]).is_none_or(|f| f.kind != FlagType::Bool))
            || (s.starts_with('-')
                && !s.contains('=')
                && s.len() == 2
                && s[1..]
                    .chars()
                    .next()
                    .and_then(|c| lookup_short(flags, c))
                    .is_none_or(|f| f.kind != FlagType::Bool));
        if takes_value {
            pos += 2;
            continue;
        }
        if !s.starts_with('-') && s == word {
            let mut out = args.to_vec();
            out.remove(pos);
            return out;
        }
        pos += 1;
    }
    args.to_vec()
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `%q` for the strings these messages quote.
fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn set_value(flag: &Flag, value: String, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let invalid = |cause: String| {
        let name = match &flag.shorthand {
            Some(s) => format!("-{s}, --{}", flag.name),
            None => format!("--{}", flag.name),
        };
        format!(
            "invalid argument {} for {} flag: {cause}",
            go_quote(&value),
            go_quote(&name)
        )
    };
    match flag.kind {
        FlagType::Bool if parse_bool(&value).is_none() => {
            return Err(invalid(format!(
                "strconv.ParseBool: parsing {}: invalid syntax",
                go_quote(&value)
            )));
        }
        FlagType::Duration if !is_go_duration(&value) => {
            return Err(invalid(format!(
                "time: invalid duration {}",
                go_quote(&value)
            )));
        }
        _ => {}
    }
    out.push((flag.name.clone(), value));
    Ok(())
}

/// The shape Go's `time.ParseDuration` accepts: `[-+]` then number+unit pairs, or `0`.
fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len());
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// Flags set (long name, value) in order, and the positional arguments.
type FlagsAndArgs = (Vec<(String, String)>, Vec<String>);

/// pflag's `parseArgs` with interspersed positional arguments.
fn parse_flags(args: &[String], flags: &[&Flag]) -> Result<FlagsAndArgs, String> {
    let mut set = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = args[i].clone();
        i += 1;
        if s.len() < 2 || !s.starts_with('-') {
            positional.push(s);
            continue;
        }
        if s == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = s.strip_prefix("--") {
            if body.starts_with(['-', '=']) {
                return Err(format!("bad flag syntax: {s}"));
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(flag) = lookup_long(flags, name) else {
                return Err(format!("unknown flag: --{name}"));
            };
            let value = match inline {
                Some(v) => v,
                None if flag.kind == FlagType::Bool => "true".into(),
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(format!("flag needs an argument: --{name}")),
            };
            set_value(flag, value, &mut set)?;
            continue;
        }
        let mut shorthands: String = s[1..].to_string();
        while let Some(c) = shorthands.chars().next() {
            if shorthands.starts_with("test.") {
                break;
            }
            let Some(flag) = lookup_short(flags, c) else {
                return Err(format!("unknown shorthand flag: '{c}' in -{shorthands}"));
            };
            let after = &shorthands[c.len_utf8()..];
            let value = if let Some(v) = after.strip_prefix('=') {
                let v = v.to_string();
                shorthands.clear();
                v
            } else if flag.kind == FlagType::Bool {
                shorthands = after.to_string();
                "true".into()
            } else if !after.is_empty() {
                let v = after.to_string();
                shorthands.clear();
                v
            } else if i < args.len() {
                i += 1;
                shorthands.clear();
                args[i - 1].clone()
            } else {
                return Err(format!("flag needs an argument: '{c}' in -{shorthands}"));
            };
            set_value(flag, value, &mut set)?;
        }
    }
    Ok((set, positional))
}

fn check_args(cmd: &Command, args: &[String]) -> Result<(), String> {
    let n = args.len();
    match cmd.args {
        None | Some(Args::Arbitrary) => Ok(()),
        Some(Args::None) if n > 0 => Err(format!(
            "unknown command {} for {}",
            go_quote(&args[0]),
            go_quote(&cmd.path)
        )),
        Some(Args::None) => Ok(()),
        Some(Args::Exact(k)) if n != k => Err(format!("accepts {k} arg(s), received {n}")),
        Some(Args::Minimum(k)) if n < k => {
            Err(format!("requires at least {k} arg(s), only received {n}"))
        }
        Some(Args::Maximum(k)) if n > k => Err(format!("accepts at most {k} arg(s), received {n}")),
        Some(Args::Range(lo, hi)) if n < lo || n > hi => Err(format!(
            "accepts between {lo} and {hi} arg(s), received {n}"
        )),
        Some(_) => Ok(()),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

//! Builds a grammar table from a siderolabs/talos git clone at a tag: the flags, aliases,
//! argument rules and runnability of the commands talos-docker runs, read from their cobra
//! definitions in Go, and the documented subcommands from the CLI reference that `talosctl docs`
//! generates from the same definitions (`website/content/<minor>/reference/cli.md`). The visible
//! flags are then checked against that reference, so a declaration this reader misses fails
//! here instead of producing a table that is silently short.

use std::path::Path;
use std::process::Command as Process;

use regex::Regex;

use super::grammar::{Args, Command, Flag, FlagType, Grammar};

/// The commands the harness runs (and their parents), where each is defined, and the Go
/// variable holding it.
pub const MODELLED: &[(&str, &str, &str)] = &[
    ("talosctl", "cmd/talosctl/cmd/root.go", "rootCmd"),
    ("talosctl gen", "cmd/talosctl/cmd/mgmt/gen/gen.go", "Cmd"),
    (
        "talosctl gen secrets",
        "cmd/talosctl/cmd/mgmt/gen/secrets.go",
        "genSecretsCmd",
    ),
    (
        "talosctl gen config",
        "cmd/talosctl/cmd/mgmt/gen/config.go",
        "genConfigCmd",
    ),
    (
        "talosctl config",
        "cmd/talosctl/cmd/talos/config.go",
        "configCmd",
    ),
    (
        "talosctl config endpoint",
        "cmd/talosctl/cmd/talos/config.go",
        "configEndpointCmd",
    ),
    (
        "talosctl config node",
        "cmd/talosctl/cmd/talos/config.go",
        "configNodeCmd",
    ),
    (
        "talosctl bootstrap",
        "cmd/talosctl/cmd/talos/bootstrap.go",
        "bootstrapCmd",
    ),
    (
        "talosctl kubeconfig",
        "cmd/talosctl/cmd/talos/kubeconfig.go",
        "kubeconfigCmd",
    ),
    (
        "talosctl version",
        "cmd/talosctl/cmd/talos/version.go",
        "versionCmd",
    ),
    (
        "talosctl upgrade-k8s",
        "cmd/talosctl/cmd/talos/upgrade-k8s.go",
        "upgradeK8sCmd",
    ),
];

/// The tag read for each supported minor: the newest one in the mirror the tables were made from.
pub const TAGS: &[&str] = &["v1.10.9", "v1.11.6", "v1.12.11", "v1.13.9", "v1.14.0-rc.1"];

struct Repo<'a> {
    git_dir: &'a Path,
    tag: &'a str,
}

impl Repo<'_> {
    fn git(&self, args: &[&str]) -> Result<String, String> {
        let out = Process::new("git")
            .arg("--git-dir")
            .arg(self.git_dir)
            .args(args)
            .output()
            .map_err(|e| format!("git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn show(&self, file: &str) -> Result<String, String> {
        self.git(&["show", &format!("{}:{file}", self.tag)])
    }

    fn files_defining(&self, pattern: &str) -> Result<Vec<String>, String> {
        let out = Process::new("git")
            .arg("--git-dir")
            .arg(self.git_dir)
            .args(["grep", "-l", "-E", pattern, self.tag, "--", "cmd/talosctl"])
            .output()
            .map_err(|e| format!("git grep: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(':').map(|(_, f)| f.to_string()))
            .collect())
    }
}

/// The table for `tag`, read from the clone at `git_dir`.
pub fn grammar_at(git_dir: &Path, tag: &str) -> Result<Grammar, String> {
    let repo = Repo { git_dir, tag };
    let commit = repo
        .git(&["rev-parse", &format!("{tag}^{{commit}}")])?
        .trim()
        .to_string();
    let go_mod = repo.show("go.mod")?;
    let module = |name: &str| -> Result<String, String> {
        let re = Regex::new(&format!(r"(?m)^\s*{} (v\S+)", regex::escape(name))).unwrap();
        re.captures(&go_mod)
            .map(|c| c[1].to_string())
            .ok_or_else(|| format!("{name} not in go.mod at {tag}"))
    };
    let minor = super::grammar::minor_of(tag).ok_or("tag has no minor")?;
    let cli_md = repo.show(&format!("website/content/{minor}/reference/cli.md"))?;
    let docs = CliReference::parse(&cli_md);

    let runs = Regex::new(r"(?m)^\s*(RunE|Run):").unwrap();
    let mut commands = Vec::new();
    for (path, file, var) in MODELLED {
        let src = repo.show(file)?;
        let literal = command_literal(&src, var)
            .ok_or_else(|| format!("{tag}: no cobra.Command for {var} in {file}"))?;
        let mut cmd = Command {
            path: path.to_string(),
            source: file.to_string(),
            aliases: aliases(&literal),
            runnable: runs.is_match(&literal),
            args: args_rule(&literal).map_err(|e| format!("{tag} {path}: {e}"))?,
            flags: Vec::new(),
            persistent_flags: Vec::new(),
            subcommands: Vec::new(),
        };
        let (flags, persistent) = declared_flags(&repo, file, &src, var)?;
        cmd.flags = flags;
        cmd.persistent_flags = persistent;
        if let Some(dir) = Path::new(file).parent().and_then(Path::to_str) {
            for f in added_by_add_command(&repo, dir, &src, var)? {
                cmd.persistent_flags.push(f);
            }
        }
        cmd.subcommands = docs.children(path);
        commands.push(cmd);
    }
    let grammar = Grammar {
        talosctl: tag.to_string(),
        commit,
        cobra: module("github.com/spf13/cobra")?,
        pflag: module("github.com/spf13/pflag")?,
        commands,
    };
    docs.check(&grammar)
        .map_err(|e| format!("{tag}: the Go declarations and cli.md disagree: {e}"))?;
    Ok(grammar)
}

/// The `&cobra.Command{...}` literal assigned to `var`, directly or through a constructor
/// (`genConfigCmd := NewConfigCmd("config")`).
fn command_literal(src: &str, var: &str) -> Option<String> {
    let direct = Regex::new(&format!(
        r"\b{}\s*(?::=|=)\s*&cobra\.Command\{{",
        regex::escape(var)
    ))
    .unwrap();
    if let Some(m) = direct.find(src) {
        return balanced(src, m.end() - 1);
    }
    let via = Regex::new(&format!(r"\b{}\s*:=\s*(\w+)\(", regex::escape(var))).unwrap();
    let ctor = via.captures(src)?[1].to_string();
    let func = Regex::new(&format!(r"func {}\(", regex::escape(&ctor))).unwrap();
    let start = func.find(src)?.end();
    let ret = Regex::new(r"return &cobra\.Command\{").unwrap();
    let m = ret.find(&src[start..])?;
    balanced(src, start + m.end() - 1)
}

/// The text from the brace at `open` to its match, skipping Go strings and comments.
fn balanced(src: &str, open: usize) -> Option<String> {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' | b'(' => depth += 1,
            b'}' | b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(src[open..=i].to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn string_literals(text: &str) -> Vec<String> {
    Regex::new(r#""((?:[^"\\]|\\.)*)""#)
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

fn aliases(literal: &str) -> Vec<String> {
    Regex::new(r"Aliases:\s*\[\]string\{([^}]*)\}")
        .unwrap()
        .captures(literal)
        .map(|c| string_literals(&c[1]))
        .unwrap_or_default()
}

fn args_rule(literal: &str) -> Result<Option<Args>, String> {
    let Some(c) = Regex::new(r"Args:\s*cobra\.(\w+)(?:\(([^)]*)\))?")
        .unwrap()
        .captures(literal)
    else {
        if literal.contains("Args:") {
            return Err("an Args validator that is not one of cobra's".into());
        }
        return Ok(None);
    };
    let nums: Vec<usize> = c
        .get(2)
        .map(|m| {
            m.as_str()
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .map_err(|_| format!("Args({})", m.as_str()))
                })
                .collect::<Result<_, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Some(match (&c[1], nums.as_slice()) {
        ("NoArgs", []) => Args::None,
        ("ArbitraryArgs", []) => Args::Arbitrary,
        ("ExactArgs", [n]) => Args::Exact(*n),
        ("MinimumNArgs", [n]) => Args::Minimum(*n),
        ("MaximumNArgs", [n]) => Args::Maximum(*n),
        ("RangeArgs", [a, b]) => Args::Range(*a, *b),
        (other, _) => return Err(format!("cobra.{other} is not modelled")),
    }))
}

/// The comma-separated arguments of the call whose `(` is at `open`.
fn call_arguments(src: &str, open: usize) -> Option<Vec<String>> {
    let body = balanced(src, open)?;
    let inner = &body[1..body.len() - 1];
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' => {
                cur.push(c);
                while let Some(d) = chars.next() {
                    cur.push(d);
                    if d == '\\' && c == '"' {
                        if let Some(e) = chars.next() {
                            cur.push(e);
                        }
                        continue;
                    }
                    if d == c {
                        break;
                    }
                }
            }
            '(' | '{' | '[' => {
                depth += 1;
                cur.push(c);
            }
            ')' | '}' | ']' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    Some(out)
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset].matches('\n').count() + 1
}

/// `var.Flags()` and `var.PersistentFlags()` declarations in `src` (flags added through a
/// `X.AddFlags(var)` helper included), with hidden marks applied.
fn declared_flags(
    repo: &Repo,
    file: &str,
    src: &str,
    var: &str,
) -> Result<(Vec<Flag>, Vec<Flag>), String> {
    let (mut local, persistent) = flags_in(file, src, var)?;
    let helper = Regex::new(&format!(
        r"\b(?:\w+\.)*(\w+)\.AddFlags\({}\)",
        regex::escape(var)
    ))
    .unwrap();
    for c in helper.captures_iter(src) {
        let ty = &c[1];
        let pattern = format!(r"func \(\w+ \*{ty}\) AddFlags\(");
        let files = repo.files_defining(&pattern)?;
        let [helper_file] = files.as_slice() else {
            return Err(format!("{ty}.AddFlags defined in {files:?}"));
        };
        let helper_src = repo.show(helper_file)?;
        let (body, param) = func_body(&helper_src, &format!(r"func \(\w+ \*{ty}\) AddFlags"))
            .ok_or_else(|| format!("no {ty}.AddFlags body in {helper_file}"))?;
        let (more, more_persistent) = flags_in(helper_file, &body, &param)?;
        if !more_persistent.is_empty() {
            return Err(format!("{ty}.AddFlags adds persistent flags"));
        }
        local.extend(more);
    }
    Ok((local, persistent))
}

/// The text of a function (from its signature, so line numbers stay right when offset back)
/// and the name of its `*cobra.Command` parameter.
fn func_body(src: &str, signature: &str) -> Option<(String, String)> {
    let re = Regex::new(&format!(r"{signature}\((\w+) \*cobra\.Command\)\s*\{{")).unwrap();
    let c = re.captures(src)?;
    let m = c.get(0).unwrap();
    let body = balanced(src, m.end() - 1)?;
    // Keep the offset so that declared lines refer to the file: pad with the preceding newlines.
    let padding = "\n".repeat(line_of(src, m.start()) - 1);
    Some((format!("{padding}{body}"), c[1].to_string()))
}

/// Persistent flags that the package's `addCommand(cmd)` gives every command it registers
/// (talosctl's node-facing commands get `--talosconfig`, `--nodes`, ... this way from v1.11).
fn added_by_add_command(repo: &Repo, dir: &str, src: &str, var: &str) -> Result<Vec<Flag>, String> {
    let call = Regex::new(&format!(r"\baddCommand\({}\)", regex::escape(var))).unwrap();
    if !call.is_match(src) {
        return Ok(Vec::new());
    }
    let files: Vec<String> = repo
        .files_defining(r"^func addCommand\(")?
        .into_iter()
        .filter(|f| Path::new(f).parent().and_then(Path::to_str) == Some(dir))
        .collect();
    let [file] = files.as_slice() else {
        return Err(format!("addCommand of {dir} defined in {files:?}"));
    };
    let text = repo.show(file)?;
    let (body, param) = func_body(&text, "func addCommand")
        .ok_or_else(|| format!("no addCommand body in {file}"))?;
    let (local, persistent) = flags_in(file, &body, &param)?;
    if !local.is_empty() {
        return Err(format!("addCommand in {file} adds local flags"));
    }
    Ok(persistent)
}

/// Declarations on `var` in `src` (which is `file`'s text, or a line-preserving part of it).
fn flags_in(file: &str, src: &str, var: &str) -> Result<(Vec<Flag>, Vec<Flag>), String> {
    let decl = Regex::new(&format!(
        r"\b{}\.(Flags|PersistentFlags)\(\)\.(\w+)\(",
        regex::escape(var)
    ))
    .unwrap();
    let mut local = Vec::new();
    let mut persistent = Vec::new();
    let mut hidden = Vec::new();
    for c in decl.captures_iter(src) {
        let set = &c[1];
        let func = &c[2];
        let open = c.get(0).unwrap().end() - 1;
        let args = call_arguments(src, open).ok_or("unbalanced call")?;
        match func {
            "MarkHidden" => {
                hidden.push(string_literals(&args[0]).remove(0));
                continue;
            }
            "MarkDeprecated" | "MarkShorthandDeprecated" => {
                return Err(format!(
                    "{file}: {var}.{set}().{func} is not modelled; teach the grammar reader"
                ));
            }
            _ => {}
        }
        let base = func.trim_end_matches('P').trim_end_matches("Var");
        let kind = match base {
            "Bool" => FlagType::Bool,
            "String" => FlagType::String,
            "StringSlice" => FlagType::StringSlice,
            "StringArray" => FlagType::StringArray,
            "Duration" => FlagType::Duration,
            other => {
                return Err(format!(
                    "{file}: flag function {func} ({other}) is not modelled"
                ));
            }
        };
        let takes_pointer = func.contains("Var");
        let has_short = func.ends_with('P');
        let mut rest = args.iter().skip(usize::from(takes_pointer));
        let literal = |a: Option<&String>| -> Result<String, String> {
            let a = a.ok_or_else(|| format!("{file}: {func} with too few arguments"))?;
            let mut s = string_literals(a);
            if s.len() != 1 || !a.starts_with('"') {
                return Err(format!("{file}: {func} name {a} is not a string literal"));
            }
            Ok(s.remove(0))
        };
        let name = literal(rest.next())?;
        let shorthand = if has_short {
            Some(literal(rest.next())?).filter(|s| !s.is_empty())
        } else {
            None
        };
        let flag = Flag {
            name,
            shorthand,
            kind,
            hidden: false,
            declared: format!("{file}:{}", line_of(src, c.get(0).unwrap().start())),
        };
        if set == "PersistentFlags" {
            persistent.push(flag);
        } else {
            local.push(flag);
        }
    }
    for name in hidden {
        let f = local
            .iter_mut()
            .chain(persistent.iter_mut())
            .find(|f| f.name == name)
            .ok_or_else(|| format!("{file}: hides undeclared flag {name}"))?;
        f.hidden = true;
    }
    Ok((local, persistent))
}

/// The CLI reference cobra generates: per command, its visible flags and subcommands.
struct CliReference {
    sections: Vec<(String, Section)>,
}

#[derive(Default)]
struct Section {
    /// (name, shorthand, type word)
    options: Vec<(String, Option<String>, Option<String>)>,
    inherited: Vec<(String, Option<String>, Option<String>)>,
    see_also: Vec<String>,
}

impl CliReference {
    fn parse(md: &str) -> CliReference {
        let mut sections: Vec<(String, Section)> = Vec::new();
        let mut block: Option<&str> = None;
        let mut in_fence = false;
        for line in md.lines() {
            if let Some(title) = line.strip_prefix("## ") {
                sections.push((title.trim().to_string(), Section::default()));
                block = None;
                continue;
            }
            let Some((_, section)) = sections.last_mut() else {
                continue;
            };
            match line.trim() {
                "### Options" => block = Some("options"),
                "### Options inherited from parent commands" => block = Some("inherited"),
                "### SEE ALSO" => block = Some("see"),
                l if l.starts_with("### ") => block = None,
                "```" => in_fence = !in_fence,
                l if in_fence && matches!(block, Some("options" | "inherited")) => {
                    let head = l.split("   ").next().unwrap_or(l).trim();
                    let mut words = head.split_whitespace().peekable();
                    let mut short = None;
                    if let Some(w) = words.peek()
                        && w.starts_with('-')
                        && !w.starts_with("--")
                    {
                        short = Some(w.trim_start_matches('-').trim_end_matches(',').to_string());
                        words.next();
                    }
                    let Some(long) = words.next().and_then(|w| w.strip_prefix("--")) else {
                        continue;
                    };
                    let entry = (long.to_string(), short, words.next().map(str::to_string));
                    if block == Some("options") {
                        section.options.push(entry);
                    } else {
                        section.inherited.push(entry);
                    }
                }
                l if block == Some("see") => {
                    if let Some(rest) = l.strip_prefix("* [")
                        && let Some((name, _)) = rest.split_once(']')
                    {
                        section.see_also.push(name.to_string());
                    }
                }
                _ => {}
            }
        }
        CliReference { sections }
    }

    fn section(&self, path: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|(t, _)| t == path)
            .map(|(_, s)| s)
    }

    fn children(&self, path: &str) -> Vec<String> {
        let prefix = format!("{path} ");
        let mut out: Vec<String> = self
            .section(path)
            .map(|s| {
                s.see_also
                    .iter()
                    .filter_map(|n| n.strip_prefix(&prefix))
                    .filter(|n| !n.contains(' '))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Every modelled command's visible flags, own and inherited, equal the reference's.
    fn check(&self, g: &Grammar) -> Result<(), String> {
        let entry = |f: &Flag| {
            (
                f.name.clone(),
                f.shorthand.clone(),
                f.kind.doc_word().map(str::to_string),
            )
        };
        for cmd in &g.commands {
            let section = self
                .section(&cmd.path)
                .ok_or_else(|| format!("cli.md has no section for {}", cmd.path))?;
            let mut own: Vec<_> = cmd
                .flags
                .iter()
                .chain(&cmd.persistent_flags)
                .filter(|f| !f.hidden)
                .map(entry)
                .collect();
            own.push(("help".into(), Some("h".into()), None));
            let own_names: Vec<String> = own.iter().map(|e| e.0.clone()).collect();
            let mut inherited: Vec<_> = g
                .flags_of(cmd)
                .into_iter()
                .filter(|f| !f.hidden && !own_names.contains(&f.name))
                .map(entry)
                .collect();
            for (mine, theirs, what) in [
                (&mut own, &section.options, "options"),
                (&mut inherited, &section.inherited, "inherited options"),
            ] {
                mine.sort();
                let mut theirs = theirs.clone();
                theirs.sort();
                if *mine != theirs {
                    return Err(format!(
                        "{} {what}: read from Go {mine:?}, documented {theirs:?}",
                        cmd.path
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The table as committed: a header naming its source, then the data.
pub fn render(g: &Grammar) -> String {
    let mut s = format!(
        "# What talosctl {tag} accepts, for the commands talos-docker runs: read from the\n\
         # cobra definitions in siderolabs/talos at {tag} (commit below), each command citing\n\
         # its file and each flag its declaration. Generated: see talos-docker/grammar/README.md.\n",
        tag = g.talosctl,
    );
    s.push_str(&format!(
        "talosctl: {}\ncommit: {}\ncobra: {}\npflag: {}\ncommands:\n",
        g.talosctl, g.commit, g.cobra, g.pflag
    ));
    let flag_line = |f: &Flag| {
        let mut parts = vec![format!("name: {}", f.name)];
        if let Some(sh) = &f.shorthand {
            parts.push(format!("shorthand: {sh}"));
        }
        let kind = match f.kind {
            FlagType::Bool => "bool",
            FlagType::String => "string",
            FlagType::StringSlice => "stringSlice",
            FlagType::StringArray => "stringArray",
            FlagType::Duration => "duration",
        };
        parts.push(format!("type: {kind}"));
        if f.hidden {
            parts.push("hidden: true".into());
        }
        parts.push(format!("declared: \"{}\"", f.declared));
        format!("      - {{{}}}\n", parts.join(", "))
    };
    for c in &g.commands {
        s.push_str(&format!("  - path: {}\n    source: {}\n", c.path, c.source));
        if !c.aliases.is_empty() {
            s.push_str(&format!("    aliases: [{}]\n", c.aliases.join(", ")));
        }
        s.push_str(&format!("    runnable: {}\n", c.runnable));
        match c.args {
            None => {}
            Some(Args::None) => s.push_str("    args: none\n"),
            Some(Args::Arbitrary) => s.push_str("    args: arbitrary\n"),
            Some(Args::Exact(n)) => s.push_str(&format!("    args: {{exact: {n}}}\n")),
            Some(Args::Minimum(n)) => s.push_str(&format!("    args: {{minimum: {n}}}\n")),
            Some(Args::Maximum(n)) => s.push_str(&format!("    args: {{maximum: {n}}}\n")),
            Some(Args::Range(a, b)) => s.push_str(&format!("    args: {{range: [{a}, {b}]}}\n")),
        }
        for (key, flags) in [
            ("flags", &c.flags),
            ("persistent_flags", &c.persistent_flags),
        ] {
            if !flags.is_empty() {
                s.push_str(&format!("    {key}:\n"));
                for f in flags {
                    s.push_str(&flag_line(f));
                }
            }
        }
        if !c.subcommands.is_empty() {
            s.push_str(&format!(
                "    subcommands: [{}]\n",
                c.subcommands.join(", ")
            ));
        }
    }
    s
}

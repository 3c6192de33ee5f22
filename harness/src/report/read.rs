//! Reading JUnit from the writers people have, into quick-junit's model: the harness's own,
//! nextest's (flaky and rerun elements), Ant and the Jenkins/windyroad schema (timestamps without
//! a timezone), Maven surefire (a `<testsuite>` root, `1,234.5` times), Jenkins' nested
//! testsuites and text-valued properties.
//!
//! quick-junit's reader wants exactly its own dialect, so the file is first rewritten, event by
//! event, into that dialect: a `<testsuite>` root gets a `<testsuites>` around it, nested suites
//! become siblings, a timestamp travels verbatim (in quick-junit's extra attributes, which it
//! writes back as they were) instead of being re-interpreted in a timezone the writer never
//! stated, and counters are dropped because every consumer here recounts the testcases.

use crate::errors::InputError;
use quick_junit::{Report, XmlString};
use quick_xml::events::{BytesStart, BytesText, Event};
use std::path::Path;

/// Holds a testsuite's or testcase's original timestamp through quick-junit's reader.
const RAW_TIMESTAMP: &str = "harness-raw-timestamp";

/// Read and parse one JUnit file.
pub fn read(path: &Path) -> Result<Report, InputError> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&path.display().to_string(), &text)
}

/// Parse JUnit text; `name` is what errors call the input.
pub fn parse(name: &str, text: &str) -> Result<Report, InputError> {
    let not_junit = |why: String| {
        InputError::Report(format!(
            "{name}: is not a JUnit report ({why}); pass a JUnit XML file (a <testsuites> or <testsuite> root)"
        ))
    };
    let normalized = normalize(text).map_err(not_junit)?;
    let mut report =
        Report::deserialize(normalized.as_slice()).map_err(|e| not_junit(e.to_string()))?;
    restore_timestamps(&mut report);
    recount(&mut report);
    Ok(report)
}

/// Counts from the testcases: the attributes were dropped because writers get them wrong.
pub(super) fn recount(report: &mut Report) {
    let suites = std::mem::take(&mut report.test_suites);
    (report.tests, report.failures, report.errors, report.skipped) = (0, 0, 0, 0);
    report.disabled = None;
    for mut suite in suites {
        let cases = std::mem::take(&mut suite.test_cases);
        (suite.tests, suite.failures, suite.errors, suite.skipped) = (0, 0, 0, 0);
        suite.disabled = None;
        suite.add_test_cases(cases);
        report.add_test_suite(suite);
    }
}

fn restore_timestamps(report: &mut Report) {
    let key = XmlString::new(RAW_TIMESTAMP);
    for suite in &mut report.test_suites {
        if let Some(v) = suite.extra.shift_remove(&key) {
            suite.extra.insert(XmlString::new("timestamp"), v);
        }
        for case in &mut suite.test_cases {
            if let Some(v) = case.extra.shift_remove(&key) {
                case.extra.insert(XmlString::new("timestamp"), v);
            }
        }
    }
}

type Owned = Event<'static>;

fn attr_value(a: &quick_xml::events::attributes::Attribute<'_>) -> Result<String, String> {
    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .map(|v| v.into_owned())
        .map_err(|e| format!("attribute {}: {e}", String::from_utf8_lossy(a.key.as_ref())))
}

fn is_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

const COUNTERS: [&str; 5] = ["tests", "failures", "errors", "skipped", "disabled"];

/// Rewrite one start (or empty) tag's attributes into quick-junit's dialect.
fn rewrite(e: &BytesStart<'_>) -> Result<BytesStart<'static>, String> {
    let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut out = BytesStart::new(tag.clone());
    for a in e.attributes() {
        let a = a.map_err(|err| format!("<{tag}>: {err}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = attr_value(&a)?;
        match (tag.as_str(), key.as_str()) {
            ("testsuites" | "testsuite", k) if COUNTERS.contains(&k) => {}
            ("testsuite" | "testcase", "timestamp") => {
                out.push_attribute((RAW_TIMESTAMP, value.as_str()));
            }
            (_, "timestamp") if !is_rfc3339(&value) => {}
            (_, "time") => {
                // Surefire groups thousands ("1,234.567"); a time no reader can use is dropped.
                let plain = value.replace(',', "");
                if plain
                    .parse::<f64>()
                    .is_ok_and(|t| t.is_finite() && t >= 0.0)
                {
                    out.push_attribute(("time", plain.as_str()));
                }
            }
            _ => out.push_attribute((key.as_str(), value.as_str())),
        }
    }
    Ok(out)
}

/// The events of one `<testsuite>` while it is open.
struct Frame(Vec<Owned>);

fn normalize(text: &str) -> Result<Vec<u8>, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut root: Option<BytesStart<'static>> = None;
    let mut saw_root = false;
    let mut open: Vec<Frame> = Vec::new();
    let mut done: Vec<Frame> = Vec::new();
    // A Jenkins-style `<property name="k">text</property>`: its text becomes the value.
    let mut property_text: Option<(BytesStart<'static>, String)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        if let Some((start, text)) = property_text.as_mut() {
            match &event {
                Event::Text(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
                Event::CData(c) => text.push_str(&c.decode().map_err(|e| e.to_string())?),
                Event::GeneralRef(r) => {
                    let name = r.decode().map_err(|e| e.to_string())?;
                    match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => text.push(c),
                        None => text.push_str(
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| format!("unknown entity &{name};"))?,
                        ),
                    }
                }
                Event::End(_) => {
                    let mut done_prop = start.clone();
                    done_prop.push_attribute(("value", text.trim()));
                    if let Some(top) = open.last_mut() {
                        top.0.push(Event::Empty(done_prop));
                    }
                    property_text = None;
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e)
                if !saw_root && e.name().as_ref() == b"testsuites" =>
            {
                saw_root = true;
                root = Some(rewrite(&e)?);
            }
            Event::Start(e) if e.name().as_ref() == b"testsuite" => {
                saw_root = true;
                open.push(Frame(vec![Event::Start(rewrite(&e)?)]));
            }
            Event::Empty(e) if e.name().as_ref() == b"testsuite" => {
                saw_root = true;
                done.push(Frame(vec![Event::Empty(rewrite(&e)?)]));
            }
            Event::End(e) if e.name().as_ref() == b"testsuite" => {
                let mut frame = open.pop().ok_or("a </testsuite> closes nothing")?;
                frame.0.push(Event::End(e.into_owned()));
                done.push(frame);
            }
            Event::Start(e) if !saw_root => {
                return Err(format!(
                    "the root element is <{}>",
                    String::from_utf8_lossy(e.name().as_ref())
                ));
            }
            Event::Empty(e) if !saw_root => {
                return Err(format!(
                    "the root element is <{}>",
                    String::from_utf8_lossy(e.name().as_ref())
                ));
            }
            event => {
                let Some(top) = open.last_mut() else {
                    // Between suites: whitespace, comments, the root's end. Nothing to keep.
                    continue;
                };
                let event = match event {
                    Event::Start(e) if e.name().as_ref() == b"property" => {
                        let has_value =
                            e.attributes().flatten().any(|a| a.key.as_ref() == b"value");
                        let start = rewrite(&e)?;
                        if has_value {
                            Event::Start(start)
                        } else {
                            property_text = Some((start, String::new()));
                            continue;
                        }
                    }
                    Event::Start(e) => Event::Start(rewrite(&e)?),
                    Event::Empty(e) => Event::Empty(rewrite(&e)?),
                    other => other.into_owned(),
                };
                top.0.push(event);
            }
        }
    }
    if !saw_root {
        return Err("there is no root element".into());
    }
    if !open.is_empty() {
        return Err("a <testsuite> is not closed".into());
    }
    let root = root.unwrap_or_else(|| BytesStart::new("testsuites"));
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(text.len() + 64));
    let io = |e: std::io::Error| e.to_string();
    writer
        .write_event(Event::Start(root.borrow()))
        .map_err(io)?;
    for frame in done {
        for event in frame.0 {
            writer.write_event(event).map_err(io)?;
        }
    }
    writer.write_event(Event::End(root.to_end())).map_err(io)?;
    writer
        .write_event(Event::Text(BytesText::new("\n")))
        .map_err(io)?;
    Ok(writer.into_inner())
}

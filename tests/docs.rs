//! The docs cannot fall behind the code: every property `gst-inspect-1.0` shows for an element is
//! documented in its page under `docs/` (own properties in the page's property table with the
//! default gst-inspect prints, inherited ones named in the "Inherited from" line), no page documents
//! a property that does not exist, and every `lva-server` command-line option and configuration key
//! is in `docs/lva-server.md`.
//!
//! The plugin inspected is the `libgstovlva.so` cargo built for this test run, loaded by the real
//! `gst-inspect-1.0` with a private registry.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ELEMENTS: [&str; 8] = [
    "ovinfer",
    "lvajson",
    "ovoverlay",
    "lvahttpsink",
    "lvamqttsink",
    "lvakafkasink",
    "ovtrack",
    "ovanalytics",
];

/// One property as gst-inspect-1.0 prints it.
#[derive(Debug, Clone, PartialEq)]
struct Inspected {
    writable: bool,
    /// The default in the docs' spelling (`0.5`, `CPU`, `""`, `none`, an enum's nick), if any.
    default: Option<String>,
}

/// One row of a page's property table.
#[derive(Debug, Clone, PartialEq)]
struct Documented {
    /// The default cell's value: the text of its first code span, or its first word.
    default: String,
}

/// A directory holding only the plugin cargo built beside this test binary.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's directory");
    let built = deps.join("libgstovlva.so");
    assert!(
        built.exists(),
        "{} is missing: cargo builds the plugin with the tests",
        built.display()
    );
    let dir = common::reference::scratch("docs-plugin");
    let copy = dir.join("libgstovlva.so");
    std::fs::copy(&built, &copy).expect("the plugin copies into the scratch directory");
    dir
}

fn gst_inspect(dir: &Path, element: &str) -> String {
    let out = Command::new("gst-inspect-1.0")
        .arg(element)
        .env("GST_PLUGIN_PATH", dir)
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .output()
        .expect("gst-inspect-1.0 runs (apt package gstreamer1.0-tools, installed by make setup)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "gst-inspect-1.0 {element} failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The "Element Properties" section of gst-inspect-1.0's output.
fn parse_inspect(text: &str) -> BTreeMap<String, Inspected> {
    let mut props = BTreeMap::new();
    let Some(start) = text.find("Element Properties:") else {
        return props;
    };
    let mut current: Option<String> = None;
    for line in text[start..].lines().skip(1) {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            break; // the next section
        }
        // A property's first line: two spaces, the name, spaces, ": ", its blurb.
        if line.len() > 2
            && !line[2..].starts_with(' ')
            && let Some((name, _)) = line[2..].split_once(" : ").or(line[2..].split_once(": "))
        {
            let name = name.trim().to_string();
            props.insert(
                name.clone(),
                Inspected {
                    writable: false,
                    default: None,
                },
            );
            current = Some(name);
            continue;
        }
        let Some(name) = &current else { continue };
        let entry = props.get_mut(name).expect("the current property");
        let trimmed = line.trim();
        if let Some(flags) = trimmed.strip_prefix("flags:") {
            entry.writable = flags.contains("writable");
        } else if let Some((_, default)) = trimmed.split_once("Default:") {
            entry.default = Some(inspect_default(default.trim()));
        }
    }
    props
}

/// gst-inspect's default spelled as the docs spell it.
fn inspect_default(raw: &str) -> String {
    if raw == "null" {
        return "none".into();
    }
    // Enums and flags: `0, "auto"` → `auto`.
    if let Some((_, nick)) = raw.split_once(", \"") {
        return nick.trim_end_matches('"').to_string();
    }
    if raw == "\"\"" {
        return raw.into();
    }
    raw.trim_matches('"').to_string()
}

/// The `## Properties` section of a page: its table rows and the names of its "Inherited from" line.
fn parse_page(text: &str) -> (BTreeMap<String, Documented>, Vec<String>) {
    let mut rows = BTreeMap::new();
    let mut inherited = Vec::new();
    let Some(start) = text.find("\n## Properties") else {
        return (rows, inherited);
    };
    let section = &text[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    for line in section[..end].lines() {
        if let Some(row) = line.strip_prefix("| `") {
            let cells: Vec<&str> = row.split(" | ").collect();
            if cells.len() < 3 {
                continue;
            }
            let name = cells[0].trim_end_matches('`').to_string();
            rows.insert(
                name,
                Documented {
                    default: cell_value(cells[1]),
                },
            );
        } else if line.starts_with("Inherited from") {
            inherited.extend(code_spans(line));
        }
    }
    (rows, inherited)
}

fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn cell_value(cell: &str) -> String {
    let cell = cell.trim();
    if cell.starts_with('`') {
        code_spans(cell).into_iter().next().unwrap_or_default()
    } else {
        cell.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// What is wrong with one element's page, one line per mistake.
fn mismatches(
    inspected: &BTreeMap<String, Inspected>,
    rows: &BTreeMap<String, Documented>,
    inherited: &[String],
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, prop) in inspected {
        match rows.get(name) {
            Some(row) if !prop.writable => {
                if row.default != "read-only" {
                    wrong.push(format!(
                        "`{name}` is read-only: its default cell says `{}`, want read-only",
                        row.default
                    ));
                }
            }
            Some(row) => {
                let want = prop.default.clone().unwrap_or_else(|| "none".into());
                if row.default != want {
                    wrong.push(format!(
                        "`{name}`: the page says default `{}`, gst-inspect says `{want}`",
                        row.default
                    ));
                }
            }
            None if inherited.contains(name) => {}
            None => wrong.push(format!(
                "`{name}` is neither in the property table nor in the \"Inherited from\" line"
            )),
        }
    }
    for name in rows.keys().chain(inherited) {
        if !inspected.contains_key(name) {
            wrong.push(format!(
                "`{name}` is documented but gst-inspect does not show it"
            ));
        }
    }
    wrong
}

#[test]
fn every_element_property_is_documented_with_its_default() {
    let dir = plugin_dir();
    let mut wrong = Vec::new();
    for element in ELEMENTS {
        let inspected = parse_inspect(&gst_inspect(&dir, element));
        assert!(
            inspected.len() > 3,
            "gst-inspect-1.0 {element} shows no properties"
        );
        let page = common::root().join(format!("docs/{element}.md"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        let (rows, inherited) = parse_page(&text);
        for line in mismatches(&inspected, &rows, &inherited) {
            wrong.push(format!("docs/{element}.md: {line}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "the docs differ from gst-inspect-1.0:\n{}",
        wrong.join("\n")
    );
}

/// `lva-server --help`'s options and the configuration file's keys (the kebab-case fields of
/// `Config` and the server's model-entry keys in src/bin/lva-server/config.rs).
#[test]
fn every_lva_server_option_and_key_is_documented() {
    let page = std::fs::read_to_string(common::root().join("docs/lva-server.md"))
        .expect("docs/lva-server.md");
    let documented = code_spans(&page);
    let help = Command::new(common::server::binary())
        .arg("--help")
        .output()
        .expect("lva-server --help runs");
    let help =
        String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    let options: Vec<String> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .collect();
    assert!(options.contains(&"--config".to_string()), "{help}");

    let source = std::fs::read_to_string(common::root().join("src/bin/lva-server/config.rs"))
        .expect("the configuration's source");
    let keys = config_keys(&source);
    assert!(keys.contains(&"max-body-bytes".to_string()), "{keys:?}");

    let missing: Vec<&String> = options
        .iter()
        .chain(&keys)
        .filter(|k| {
            !documented
                .iter()
                .any(|d| d == *k || d.starts_with(&format!("{k} ")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/lva-server.md does not document {missing:?} (each must appear as a code span)"
    );
}

/// The keys of the configuration file: the `pub` fields of `struct Config`, `Tls`, `Auth`,
/// `BasicUser` and `Streams` in kebab-case, and the server's model-entry keys (`SERVER_KEYS`).
fn config_keys(source: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for name in ["Config", "Tls", "Auth", "BasicUser", "Streams"] {
        let head = format!("pub struct {name} {{");
        let Some(start) = source.find(&head) else {
            panic!("config.rs has no `{head}`")
        };
        let body = &source[start + head.len()..];
        let body = &body[..body.find("\n}").expect("the struct's end")];
        for line in body.lines() {
            if let Some(field) = line.trim().strip_prefix("pub ")
                && let Some((field, _)) = field.split_once(':')
            {
                keys.push(field.replace('_', "-"));
            }
        }
    }
    let list = source
        .split_once("const SERVER_KEYS")
        .and_then(|(_, rest)| rest.split_once('=').map(|(_, r)| r))
        .and_then(|rest| rest.split_once(';').map(|(l, _)| l))
        .expect("config.rs's SERVER_KEYS");
    keys.extend(list.split('"').skip(1).step_by(2).map(str::to_string));
    keys
}

#[test]
fn parsers_read_what_gst_inspect_and_pages_say() {
    let inspect = "Element Properties:\n\
        \x20 device              : OpenVINO device\n\
        \x20                       flags: readable, writable\n\
        \x20                       String. Default: \"CPU\"\n\
        \x20 frames              : Frames out\n\
        \x20                       flags: readable\n\
        \x20                       Unsigned Integer64. Range: 0 - 1 Default: 0 \n\
        \x20 hint                : Hint\n\
        \x20                       flags: readable, writable\n\
        \x20                       Enum \"X\" Default: 0, \"latency\"\n\
        \x20                          (0): latency          - Latency\n\
        \x20 labels              : Labels\n\
        \x20                       flags: readable, writable\n\
        \x20                       String. Default: null\n\
        \x20 threshold           : Minimum\n\
        \x20                       flags: readable, writable\n\
        \x20                       Double. Range:               0 -               1 Default:             0.5 \n\
        \x20 name                : The name\n\
        \x20                       flags: readable, writable\n\
        \x20                       String. Default: \"e0\"\n\
        \n\
        Element Signals:\n";
    let inspected = parse_inspect(inspect);
    let default = |n: &str| inspected[n].default.clone().unwrap_or_default();
    assert_eq!(default("device"), "CPU");
    assert_eq!(default("hint"), "latency");
    assert_eq!(default("labels"), "none");
    assert_eq!(default("threshold"), "0.5");
    assert!(!inspected["frames"].writable && inspected["threshold"].writable);

    let page = "# e\n\n## Properties\n\n| property | default | description |\n|---|---|---|\n\
        | `device` | `CPU` | the device |\n| `frames` | read-only | frames |\n\
        | `hint` | `latency` (one stream) | hint |\n| `labels` | none | file |\n\
        | `threshold` | `0.4` | wrong default |\n\nInherited from GstObject: `name`.\n\n## Errors\n";
    let (rows, inherited) = parse_page(page);
    assert_eq!(inherited, ["name"]);
    assert_eq!(
        mismatches(&inspected, &rows, &inherited),
        ["`threshold`: the page says default `0.4`, gst-inspect says `0.5`"]
    );
    let (mut rows, inherited) = parse_page(&page.replace("| `labels` | none | file |\n", ""));
    rows.insert(
        "stale".into(),
        Documented {
            default: "1".into(),
        },
    );
    let wrong = mismatches(&inspected, &rows, &inherited);
    assert!(
        wrong.iter().any(|w| w.starts_with("`labels` is neither")),
        "{wrong:?}"
    );
    assert!(
        wrong.iter().any(|w| w.starts_with("`stale` is documented")),
        "{wrong:?}"
    );
}

/// Every relative link of README.md and docs/*.md points at a file that exists, and its `#anchor`
/// at a heading of that file (GitHub's anchors: lower case, punctuation dropped, spaces → `-`).
#[test]
fn every_relative_link_reaches_its_file_and_heading() {
    let root = common::root();
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page");
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let dest = if file.is_empty() {
                page.clone()
            } else {
                page.parent().expect("a folder").join(file)
            };
            let name = page
                .strip_prefix(&root)
                .unwrap_or(page)
                .display()
                .to_string();
            if !dest.exists() {
                broken.push(format!("{name}: ({target}): no such file"));
            } else if !anchor.is_empty() {
                let headings = std::fs::read_to_string(&dest).unwrap_or_default();
                if !headings
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .any(|l| slug(l.trim_start_matches('#')) == anchor)
                {
                    broken.push(format!("{name}: ({target}): no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The targets of the `[text](target)` links of a Markdown text, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    found
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect::<String>()
        .to_lowercase()
}

//! Labels files: either one label per line (id = line number from 0) or "id name" per line
//! (as coco_labels.txt: "0  person"). Blank lines are skipped in the second form only.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Largest labels file read (bytes): far beyond any real one (COCO's is 1 KB, ImageNet's 21k
/// classes about 400 KB), small enough that a wrong path (`/dev/zero`, a video) fails at once.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Longest line (bytes) of a labels file.
pub const MAX_LINE_BYTES: usize = 4096;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels(HashMap<i32, String>);

impl Labels {
    /// Reads and parses a labels file, refusing files over [`MAX_FILE_BYTES`], lines over
    /// [`MAX_LINE_BYTES`] and text that is not UTF-8, with an error that says which. Never reads
    /// more than the limit, so an endless file (`/dev/zero`) fails at once.
    pub fn read(path: &Path) -> std::io::Result<Labels> {
        Ok(Labels::parse(&read_text(path)?))
    }

    pub fn parse(text: &str) -> Labels {
        let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
        let with_id = |l: &str| -> Option<(i32, String)> {
            let (id, name) = l.trim().split_once(char::is_whitespace)?;
            let name = name.trim();
            (!name.is_empty()).then_some((id.parse().ok()?, name.to_string()))
        };
        let non_empty: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.trim().is_empty())
            .collect();
        if !non_empty.is_empty() && non_empty.iter().all(|l| with_id(l).is_some()) {
            Labels(non_empty.iter().filter_map(|l| with_id(l)).collect())
        } else {
            // Trailing empty lines carry no label; inner ones keep their index.
            let end = lines
                .iter()
                .rposition(|l| !l.trim().is_empty())
                .map_or(0, |i| i + 1);
            Labels(
                lines[..end]
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (i as i32, l.trim().to_string()))
                    .collect(),
            )
        }
    }

    /// Labels numbered from 0 in the order given, each as it is (a text recogniser's character
    /// set: the blank, the characters, the space).
    pub fn from_entries(entries: &[String]) -> Labels {
        Labels(
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| (i as i32, e.clone()))
                .collect(),
        )
    }

    pub fn get(&self, id: i32) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }

    /// All labels, by id.
    pub fn sorted(&self) -> Vec<(i32, &str)> {
        let mut all: Vec<(i32, &str)> = self.0.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The text of a labels file, refusing files over [`MAX_FILE_BYTES`], lines over
/// [`MAX_LINE_BYTES`] and text that is not UTF-8, with an error that says which. Never reads
/// more than the limit, so an endless file (`/dev/zero`) fails at once.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "over {MAX_FILE_BYTES} bytes: not a labels file (one label per line)"
        )));
    }
    if let Some((n, _)) = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .find(|(_, line)| line.len() > MAX_LINE_BYTES)
    {
        return Err(invalid(format!(
            "line {} is over {MAX_LINE_BYTES} bytes: not a labels file (one label per line)",
            n + 1
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| invalid(format!("not UTF-8 text ({e}): not a labels file")))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_label_per_line() {
        let l = Labels::parse("red\ngreen\n\nblue\n\n");
        assert_eq!(l.get(0), Some("red"));
        assert_eq!(l.get(2), Some(""));
        assert_eq!(l.get(3), Some("blue"));
        assert_eq!(l.len(), 4);
    }

    #[test]
    fn id_and_name_per_line_with_gaps_and_spaces() {
        let l = Labels::parse("0  person\n1  bicycle\n9  traffic light\n\n");
        assert_eq!(l.get(0), Some("person"));
        assert_eq!(l.get(9), Some("traffic light"));
        assert_eq!(l.get(5), None);
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn files_are_bounded_in_size_and_line_length() {
        let dir = std::env::temp_dir().join(format!("ovlva-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("ok.txt");
        std::fs::write(&ok, "0 person\n1 bicycle\n").unwrap();
        assert_eq!(Labels::read(&ok).unwrap().get(1), Some("bicycle"));
        let long = dir.join("long.txt");
        std::fs::write(&long, format!("a\n{}\n", "x".repeat(MAX_LINE_BYTES + 1))).unwrap();
        let e = Labels::read(&long).unwrap_err().to_string();
        assert!(e.contains("line 2 is over"), "{e}");
        let e = Labels::read(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("over 4194304 bytes"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn mixed_files_are_read_as_plain_lines() {
        let l = Labels::parse("1 cat\ndog\r\n");
        assert_eq!(l.get(0), Some("1 cat"));
        assert_eq!(l.get(1), Some("dog"));
    }
}

/// Property tests of the labels parser (`cargo test`; fuzzing: fuzz/, target `labels`).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A label that cannot be read as "id name": starts with a letter, no line break.
    fn label() -> impl Strategy<Value = String> {
        (
            prop::sample::select(b"abcXYZ".to_vec()),
            proptest::collection::vec(prop::sample::select(b"az09 _-.()".to_vec()), 0..12),
        )
            .prop_map(|(first, rest)| {
                let mut s = String::from(first as char);
                s.extend(rest.into_iter().map(char::from));
                s.trim_end().to_string()
            })
    }

    proptest! {
        #[test]
        fn id_name_files_read_back(
            labels in proptest::collection::btree_map(any::<i32>(), label(), 1..20),
            gap in prop::sample::select(vec![" ", "  ", "\t", " \t "]),
            crlf in any::<bool>(), blank in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            for (id, name) in &labels {
                text.push_str(&format!("{id}{gap}{name}{eol}"));
                if blank {
                    text.push_str(eol);
                }
            }
            let parsed = Labels::parse(&text);
            let expected: BTreeMap<i32, &str> =
                labels.iter().map(|(id, n)| (*id, n.as_str())).collect();
            prop_assert_eq!(parsed.sorted(), expected.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn one_label_per_line_files_number_from_zero(
            labels in proptest::collection::vec(label(), 1..20),
            trailing in 0usize..3, crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let text = labels.join(eol) + &eol.repeat(trailing);
            let parsed = Labels::parse(&text);
            prop_assert_eq!(parsed.len(), labels.len());
            for (i, name) in labels.iter().enumerate() {
                prop_assert_eq!(parsed.get(i as i32), Some(name.as_str()));
            }
        }

        #[test]
        fn any_text_parses_to_trimmed_labels(chars in proptest::collection::vec(prop_oneof![
            any::<char>(),
            prop::sample::select(vec!['1', '-', '7', ' ', '\t', '\n', '\r', 'a', '\u{a0}']),
        ], 0..200)) {
            let text: String = chars.into_iter().collect();
            let parsed = Labels::parse(&text);
            prop_assert!(parsed.len() <= text.lines().count());
            for (id, name) in parsed.sorted() {
                prop_assert_eq!(parsed.get(id), Some(name));
                prop_assert_eq!(name, name.trim());
            }
        }
    }
}

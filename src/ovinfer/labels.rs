//! Labels files: either one label per line (id = line number from 0) or "id name" per line
//! (as coco_labels.txt: "0  person"). Blank lines are skipped in the second form only.

use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels(HashMap<i32, String>);

impl Labels {
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
    fn mixed_files_are_read_as_plain_lines() {
        let l = Labels::parse("1 cat\ndog\r\n");
        assert_eq!(l.get(0), Some("1 cat"));
        assert_eq!(l.get(1), Some("dog"));
    }
}

//! Text recognition: greedy CTC decoding of a sequence of class probabilities [1,T,C] (PP-OCR's
//! recognisers) into character ids, and the character set the ids are read with.
//!
//! As PaddleOCR's and rapidocr's `CTCLabelDecode`: at each step the most probable class; repeats
//! of the step before merged; the blank (class 0) dropped; the text's confidence is the mean of
//! the kept steps' probabilities (0 for no character). The character set is the model's list
//! with the blank put in front and a space after it, so a model of C classes has C - 2
//! characters in its list.

use super::Tensor;

/// The class of "no character" in CTC outputs.
pub const BLANK: usize = 0;

/// Characters by class id: the blank at 0, the model's list, a space at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charset(Vec<String>);

impl Charset {
    /// The character set of a model from its list of characters (one per entry).
    pub fn new(characters: impl IntoIterator<Item = String>) -> Charset {
        let mut all = vec![String::new()];
        all.extend(characters);
        all.push(" ".to_string());
        Charset(all)
    }

    /// A list of characters, one per line, as the `character` entry of a PP-OCR model's
    /// metadata or a PaddleOCR keys file: lines as they are (a line of one space is the space
    /// character), `\r\n` or `\n` ends, no empty last line.
    pub fn parse(text: &str) -> Charset {
        let body = text.strip_suffix('\n').unwrap_or(text);
        if body.is_empty() {
            return Charset::new([]);
        }
        Charset::new(
            body.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()),
        )
    }

    /// Classes the model must have: the characters, the blank and the space.
    pub fn classes(&self) -> usize {
        self.0.len()
    }

    /// Every entry by class id (the blank as an empty string).
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// The text of class ids (ids outside the set are left out).
    pub fn text(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter_map(|&i| self.0.get(i as usize))
            .map(String::as_str)
            .collect()
    }

    /// Checks the set against a model output of `classes` classes.
    pub fn check(&self, classes: usize) -> Result<(), String> {
        if self.classes() == classes {
            return Ok(());
        }
        Err(format!(
            "the character set has {} characters, so {} classes with the blank and the space, \
             but the model has {classes} classes",
            self.classes() - 2,
            self.classes()
        ))
    }
}

/// (steps, classes) of a sequence output [1,T,C].
pub fn sequence(shape: &[usize]) -> Option<(usize, usize)> {
    match shape {
        [1, t, c] if *t >= 1 && *c >= 2 => Some((*t, *c)),
        _ => None,
    }
}

/// A decoded sequence: class ids (blank and repeats removed) and the mean probability of the
/// steps they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub ids: Vec<u32>,
    pub confidence: f32,
}

/// Greedy CTC decoding of a [1,T,C] output of probabilities.
pub fn decode(out: &Tensor<'_>) -> Result<Sequence, String> {
    let (steps, classes) = sequence(out.shape).ok_or_else(|| {
        format!(
            "text recognition output must be a sequence [1,T,C], got {:?}",
            out.shape
        )
    })?;
    if steps.checked_mul(classes) != Some(out.data.len()) {
        return Err("text recognition output size does not match its shape".into());
    }
    let mut ids = Vec::new();
    let mut sum = 0.0f64;
    let mut previous = None;
    for step in out.data.chunks_exact(classes) {
        // The first of equal maxima, NaN never (as numpy's argmax on finite values).
        let (best, p) = step
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |acc, (i, &v)| {
                    if v > acc.1 { (i, v) } else { acc }
                },
            );
        if best != BLANK && previous != Some(best) {
            ids.push(best as u32);
            sum += f64::from(p);
        }
        previous = Some(best);
    }
    let confidence = if ids.is_empty() {
        0.0
    } else {
        (sum / ids.len() as f64) as f32
    };
    Ok(Sequence { ids, confidence })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A [1,T,C] output whose step t puts `p` on class `best[t]` and spreads the rest.
    fn output(best: &[(usize, f32)], classes: usize) -> Vec<f32> {
        let mut data = Vec::new();
        for &(c, p) in best {
            let rest = (1.0 - p) / (classes - 1) as f32;
            data.extend((0..classes).map(|i| if i == c { p } else { rest }));
        }
        data
    }

    #[test]
    fn repeats_merge_and_blanks_separate() {
        // "h h _ e l l _ l o" -> "hello": the blank between the two l's keeps both.
        let charset = Charset::parse("h\ne\nl\no");
        let (h, e, l, o) = (1, 2, 3, 4);
        let steps = [
            (h, 0.9),
            (h, 0.8),
            (0, 0.99),
            (e, 0.7),
            (l, 0.6),
            (l, 0.9),
            (0, 0.99),
            (l, 0.5),
            (o, 0.8),
        ];
        let data = output(&steps, charset.classes());
        let shape = [1, steps.len(), charset.classes()];
        let s = decode(&Tensor {
            shape: &shape,
            data: &data,
        })
        .unwrap();
        assert_eq!(charset.text(&s.ids), "hello");
        // The first step of each run counts: 0.9, 0.7, 0.6, 0.5, 0.8.
        assert!((s.confidence - 0.7).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn all_blank_is_empty_with_confidence_zero() {
        let data = output(&[(0, 0.9), (0, 0.9)], 4);
        let shape = [1, 2, 4];
        let s = decode(&Tensor {
            shape: &shape,
            data: &data,
        })
        .unwrap();
        assert_eq!(
            s,
            Sequence {
                ids: vec![],
                confidence: 0.0
            }
        );
    }

    #[test]
    fn the_set_has_the_blank_first_and_a_space_last() {
        let charset = Charset::parse("a\r\n \nb\n");
        assert_eq!(charset.entries(), ["", "a", " ", "b", " "]);
        assert_eq!(charset.classes(), 5);
        assert_eq!(charset.text(&[1, 4, 3, 2, 9]), "a b ");
        assert!(charset.check(5).is_ok());
        let e = charset.check(6625).unwrap_err();
        assert!(
            e.contains("3 characters") && e.contains("6625 classes"),
            "{e}"
        );
        // No trailing newline: the last line is a character too.
        assert_eq!(Charset::parse("x\ny").classes(), 4);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let data = [0.0; 6];
        for shape in [
            vec![1, 2],
            vec![2, 1, 3],
            vec![1, 3, 3],
            vec![1, usize::MAX, 2],
        ] {
            assert!(
                decode(&Tensor {
                    shape: &shape,
                    data: &data
                })
                .is_err(),
                "{shape:?}"
            );
        }
    }
}

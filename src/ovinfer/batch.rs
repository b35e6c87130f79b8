//! Where each frame's results lie in the outputs of an inference run on a batch of frames.
//!
//! Most models keep a batch axis: an output of shape [1, ...] for one frame is [N, ...] for a
//! batch, frame after frame. Some fold the batch into another axis instead, and then a frame's
//! values are not contiguous: MediaPipe's BlazeFace reshapes each feature map's anchors to
//! [1, N*anchors, d] and concatenates the maps, so its [1, N*896, 16] holds the first map's
//! anchors of every frame, then the second map's. A decoder that knows such a folding gives
//! its anchor groups; any other change of shape is refused, since results could not be told
//! apart per frame.

use std::borrow::Cow;

/// Per output, the lengths (in values) of the runs one frame's output is cut into: each run
/// sits in a block of `batch` runs of that length, one per frame, the blocks one after the
/// other.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLayout {
    batch: usize,
    runs: Vec<Vec<usize>>,
}

impl BatchLayout {
    /// Frames per inference.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// One frame per inference.
    pub fn single(one: &[Vec<usize>]) -> Self {
        BatchLayout {
            batch: 1,
            runs: one.iter().map(|s| vec![s.iter().product()]).collect(),
        }
    }

    /// The layout of outputs of shapes `batched` for `batch` frames, given their shapes `one`
    /// for one frame and `groups(i)`, the row groups (anchors per feature map) a decoder knows
    /// output `i` folds the batch into, if any.
    pub fn new(
        one: &[Vec<usize>],
        batched: &[Vec<usize>],
        batch: usize,
        groups: impl Fn(usize) -> Option<Vec<usize>>,
    ) -> Result<Self, String> {
        if one.len() != batched.len() {
            return Err(format!(
                "the model has {} outputs for one frame and {} for a batch",
                one.len(),
                batched.len()
            ));
        }
        let runs = one
            .iter()
            .zip(batched)
            .enumerate()
            .map(|(i, (one, batched))| {
                let len: usize = one.iter().product();
                let batch_axis = one.first() == Some(&1)
                    && batched.first() == Some(&batch)
                    && one[1..] == batched[1..];
                // [1, rows, d] folded into [1, batch * rows, d]
                let folded = one.len() >= 2
                    && one[0] == 1
                    && batched.len() == one.len()
                    && batched[0] == 1
                    && batched[1] == batch * one[1]
                    && one[2..] == batched[2..];
                match groups(i) {
                    _ if batch_axis => Ok(vec![len]),
                    Some(rows) if folded && rows.iter().sum::<usize>() == one[1] => {
                        let width = len / one[1].max(1);
                        Ok(rows.iter().map(|r| r * width).collect())
                    }
                    _ => Err(format!(
                        "output {i} has shape {batched:?} for {batch} frames and {one:?} for one: \
                         it does not keep each frame's results apart"
                    )),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(BatchLayout { batch, runs })
    }

    /// Frame `slot`'s values of output `output` (`data`: that output for the frames inferred
    /// together, at most `batch`; a remote batch started half full holds just its frames):
    /// borrowed when they are contiguous, else gathered.
    pub fn frame<'a>(&self, output: usize, data: &'a [f32], slot: usize) -> Option<Cow<'a, [f32]>> {
        let runs = self.runs.get(output)?;
        let per_frame: usize = runs.iter().sum();
        if per_frame == 0 || !data.len().is_multiple_of(per_frame) {
            return None;
        }
        let frames = data.len() / per_frame;
        if slot >= frames || frames > self.batch {
            return None;
        }
        if let [len] = runs[..] {
            return Some(Cow::Borrowed(&data[slot * len..(slot + 1) * len]));
        }
        let mut values = Vec::with_capacity(per_frame);
        let mut block = 0;
        for &len in runs {
            values.extend_from_slice(&data[block + slot * len..block + (slot + 1) * len]);
            block += frames * len;
        }
        Some(Cow::Owned(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_axis_gives_contiguous_frames() {
        let layout = BatchLayout::new(&[vec![1, 3]], &[vec![2, 3]], 2, |_| None).unwrap();
        let data = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0];
        assert_eq!(layout.frame(0, &data, 1).unwrap()[..], [10.0, 11.0, 12.0]);
        assert!(matches!(layout.frame(0, &data, 0), Some(Cow::Borrowed(_))));
        assert_eq!(layout.frame(0, &data, 2), None, "no third frame");
        assert_eq!(layout.frame(0, &data[..5], 0), None, "wrong size");
        // One frame of a batch of two (sent alone to a server).
        assert_eq!(layout.frame(0, &data[..3], 0).unwrap()[..], [0.0, 1.0, 2.0]);
        assert_eq!(layout.frame(0, &data[..3], 1), None, "no second frame");
        let three = [data.as_slice(), &data[..3]].concat();
        assert_eq!(layout.frame(0, &three, 0), None, "more frames than a batch");
    }

    #[test]
    fn a_folded_batch_is_gathered_per_anchor_group() {
        // Two frames, rows of width 2: groups of 2 and 1 rows per frame.
        let one = [vec![1, 3, 2]];
        let layout = BatchLayout::new(&one, &[vec![1, 6, 2]], 2, |_| Some(vec![2, 1])).unwrap();
        // Group 1 of frame 0, of frame 1; then group 2 of frame 0, of frame 1.
        let data = [0., 1., 2., 3., 10., 11., 12., 13., 4., 5., 14., 15.];
        assert_eq!(
            layout.frame(0, &data, 0).unwrap()[..],
            [0., 1., 2., 3., 4., 5.]
        );
        assert_eq!(
            layout.frame(0, &data, 1).unwrap()[..],
            [10., 11., 12., 13., 14., 15.]
        );
        // One group: contiguous after all (BlazeFace full range).
        let layout = BatchLayout::new(&one, &[vec![1, 6, 2]], 2, |_| Some(vec![3])).unwrap();
        assert_eq!(layout.frame(0, &data, 1).unwrap()[..], data[6..]);
    }

    #[test]
    fn other_shapes_are_refused() {
        let one = [vec![1, 896, 16], vec![1, 1000]];
        assert!(BatchLayout::new(&one, &[vec![4, 896, 16], vec![4, 1000]], 4, |_| None).is_ok());
        let e =
            BatchLayout::new(&one, &[vec![1, 3584, 16], vec![4, 1000]], 4, |_| None).unwrap_err();
        assert!(e.contains("output 0") && e.contains("[1, 3584, 16]"), "{e}");
        let e =
            BatchLayout::new(&one, &[vec![1, 896, 16], vec![4, 1000]], 4, |_| None).unwrap_err();
        assert!(e.contains("does not keep"), "{e}");
        assert!(
            BatchLayout::new(&one, &[vec![1, 3584, 16], vec![4, 1000]], 4, |_| Some(
                vec![100]
            ))
            .is_err(),
            "groups that do not add up to the rows"
        );
        assert!(BatchLayout::new(&[vec![3, 8]], &[vec![12, 8]], 4, |_| None).is_err());
    }

    #[test]
    fn single_frames_are_whole_outputs() {
        let layout = BatchLayout::single(&[vec![1, 2], vec![1, 1]]);
        assert_eq!(layout.frame(1, &[7.0], 0).unwrap()[..], [7.0]);
    }
}

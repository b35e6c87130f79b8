//! The disk spool: a file-backed [`Store`] so that a broker outage longer than memory allows, or
//! a pipeline restart, loses no document.
//!
//! # Layout of `spool-dir`
//!
//! * `lock`: held with an exclusive `flock` (std's `File::try_lock`) while an element uses the
//!   folder, and holding that process's id; a second element (in this process or another) is
//!   refused. The lock goes away with the process, so a crash leaves nothing stale.
//! * `NNNNNNNNNNNNNNNNNNNN.seg`: append-only segment files, named by the sequence of their first
//!   record (20 digits, so they sort by name). Each starts with the 8 bytes `OVLVASP1`, then
//!   records:
//!
//!   | bytes | field |
//!   |---|---|
//!   | 4 | body length L (u32, little-endian) |
//!   | 4 | CRC-32 (IEEE) of the next 16 + L bytes |
//!   | 8 | sequence (u64 LE), one more than the record before |
//!   | 8 | PTS in ns (u64 LE; `u64::MAX` = none) |
//!   | L | the document |
//!
//!   Each record is written with one `write` call, so a process that is killed leaves either the
//!   whole record or a torn tail; the data is flushed to disk (`fdatasync`) by the worker about
//!   every second, so an OS crash or power loss can cost the last second.
//! * `commit`: the sequence of the first document not yet done (everything before it was
//!   delivered or dropped), in two 16-byte slots (u64 LE, CRC-32 of it, 4 zero bytes) written in
//!   turn, so a torn write leaves the other slot; the valid slot with the higher value counts.
//!
//! # Opening
//! Every segment is scanned. A record that is short or fails its checksum ends its segment: the
//! rest of the file is cut off (counted in `discarded`, logged by the element). Records before
//! the commit position are skipped; the others are delivered first, in order, before anything
//! new (`recovered`).
//!
//! # Bound
//! The bytes of the records not yet done (headers included) stay within `max_bytes`; past it, the
//! queue's `queue-full` policy applies (drop the oldest waiting record, or block). A segment is
//! deleted once every record in it is done, so the folder holds at most `max_bytes` of pending
//! records plus the done part of two segments (each `max_bytes / 8`, 4 KiB to 64 MiB).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::body::Body;
use super::queue::{Doc, Store};

const MAGIC: &[u8; 8] = b"OVLVASP1";
const HEADER: u64 = 24;
/// No document is this big; a larger length is damage.
const MAX_BODY: u64 = 256 << 20;
const NO_PTS: u64 = u64::MAX;

struct Segment {
    /// Sequence of its first record (its name).
    first: u64,
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    len: u64,
    /// Sequence of its last record, if it has one.
    last: Option<u64>,
}

/// Where a record is.
#[derive(Debug, Clone, Copy)]
struct Pos {
    /// `first` of its segment.
    segment: u64,
    offset: u64,
    sequence: u64,
    /// Record bytes, header included.
    size: u64,
}

/// What opening a spool found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Records left by an earlier run, to be delivered first.
    pub recovered: u64,
    /// Damaged records cut off (a torn tail); each cut counts one.
    pub discarded: u64,
    /// What was cut, for the log.
    pub damage: Vec<String>,
}

/// The spool store (see the module documentation).
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Held until [`Store::close`].
    lock: Option<File>,
    segments: VecDeque<Segment>,
    commit_file: File,
    commit_slot: u64,
    /// Every record before this sequence is done.
    committed: u64,
    /// Sequence of the next record appended.
    next_sequence: u64,
    /// The next record to take, if any waits.
    cursor: Option<Pos>,
    in_flight: VecDeque<Pos>,
    /// Sequences dropped (inclusive ranges) while older records were in flight: a rewind to
    /// those must skip them.
    holes: Vec<(u64, u64)>,
    waiting: usize,
    /// Bytes of the records not yet done (waiting and in flight).
    live_bytes: u64,
    dirty: bool,
    closed: bool,
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// A record read back: the document and the position after it.
fn read_record(segment: &Segment, offset: u64) -> Result<Option<(Doc<Body>, u64)>, String> {
    if offset + HEADER > segment.len {
        return Ok(None);
    }
    let mut header = [0u8; HEADER as usize];
    segment
        .file
        .read_exact_at(&mut header, offset)
        .map_err(|e| io_error("cannot read", &segment.path, e))?;
    let field = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap_or_default());
    let len = u64::from(u32::from_le_bytes(
        header[0..4].try_into().unwrap_or_default(),
    ));
    let sum = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
    if len > MAX_BODY || offset + HEADER + len > segment.len {
        return Ok(None);
    }
    let mut body = vec![0u8; len as usize];
    segment
        .file
        .read_exact_at(&mut body, offset + HEADER)
        .map_err(|e| io_error("cannot read", &segment.path, e))?;
    if crc(&[&header[8..], &body]) != sum {
        return Ok(None);
    }
    let pts = field(16);
    let doc = Doc {
        body: Body::from_vec(body),
        pts: (pts != NO_PTS).then_some(pts),
        sequence: field(8),
    };
    Ok(Some((doc, offset + HEADER + len)))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, bounded to `max_bytes` of pending records.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Spool, Opened), String> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        let lock_path = dir.join("lock");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_error("cannot open", &lock_path, e))?;
        if let Err(e) = lock.try_lock() {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            return Err(match e {
                std::fs::TryLockError::WouldBlock => format!(
                    "spool-dir {} is in use by another element (process {}); give each sink \
                     its own spool-dir",
                    dir.display(),
                    holder.trim()
                ),
                std::fs::TryLockError::Error(e) => io_error("cannot lock", &lock_path, e),
            });
        }
        let _ = lock.set_len(0);
        let _ = lock.seek(SeekFrom::Start(0));
        let _ = write!(lock, "{}", std::process::id());

        let commit_path = dir.join("commit");
        let commit_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&commit_path)
            .map_err(|e| io_error("cannot open", &commit_path, e))?;
        let mut slots = [0u8; 32];
        let n = commit_file.read_at(&mut slots, 0).unwrap_or(0);
        let committed = (0..2)
            .filter(|i| (i + 1) * 16 <= n)
            .filter_map(|i| {
                let slot = &slots[i * 16..i * 16 + 16];
                let value = u64::from_le_bytes(slot[0..8].try_into().ok()?);
                let sum = u32::from_le_bytes(slot[8..12].try_into().ok()?);
                (crc(&[&slot[0..8]]) == sum).then_some(value)
            })
            .max()
            .unwrap_or(0);

        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
            .map_err(|e| io_error("cannot read", dir, e))?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let first = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".seg")?
                    .parse()
                    .ok()?;
                Some((first, path))
            })
            .collect();
        names.sort();

        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(1),
            segment_bytes: (max_bytes / 8).clamp(4096, 64 << 20),
            lock: Some(lock),
            segments: VecDeque::new(),
            commit_file,
            commit_slot: 0,
            committed,
            next_sequence: committed,
            cursor: None,
            in_flight: VecDeque::new(),
            holes: Vec::new(),
            waiting: 0,
            live_bytes: 0,
            dirty: false,
            closed: false,
        };
        let mut opened = Opened::default();
        for (first, path) in names {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_error("cannot open", &path, e))?;
            let len = file
                .metadata()
                .map_err(|e| io_error("cannot read", &path, e))?
                .len();
            let mut segment = Segment {
                first,
                path,
                file,
                len,
                last: None,
            };
            let mut magic = [0u8; 8];
            let mut offset = 8;
            if len < 8 || segment.file.read_exact_at(&mut magic, 0).is_err() || &magic != MAGIC {
                opened.discarded += 1;
                opened.damage.push(format!(
                    "{} is not a spool segment (no OVLVASP1 header); removed",
                    segment.path.display()
                ));
                let _ = std::fs::remove_file(&segment.path);
                continue;
            }
            while let Some((doc, end)) = read_record(&segment, offset)? {
                let pos = Pos {
                    segment: first,
                    offset,
                    sequence: doc.sequence,
                    size: end - offset,
                };
                if doc.sequence >= spool.committed {
                    if spool.cursor.is_none() {
                        spool.cursor = Some(pos);
                    }
                    spool.waiting += 1;
                    spool.live_bytes += pos.size;
                }
                spool.next_sequence = spool.next_sequence.max(doc.sequence + 1);
                segment.last = Some(doc.sequence);
                offset = end;
            }
            if offset < segment.len {
                opened.discarded += 1;
                opened.damage.push(format!(
                    "{}: {} damaged bytes after offset {offset} (a record torn by a crash) cut off",
                    segment.path.display(),
                    segment.len - offset
                ));
                segment
                    .file
                    .set_len(offset)
                    .map_err(|e| io_error("cannot truncate", &segment.path, e))?;
                segment.len = offset;
            }
            spool.segments.push_back(segment);
        }
        opened.recovered = spool.waiting as u64;
        spool.delete_done_segments();
        Ok((spool, opened))
    }

    /// The folder of this spool.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn segment(&self, first: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| s.first == first)
    }

    fn in_hole(&self, sequence: u64) -> bool {
        self.holes
            .iter()
            .any(|&(from, to)| (from..=to).contains(&sequence))
    }

    /// The position of the next record after `pos` that was not dropped: later in its segment
    /// or in the next ones.
    fn after(&self, pos: Pos) -> Option<Pos> {
        let index = self.segments.iter().position(|s| s.first == pos.segment)?;
        let mut offset = pos.offset + pos.size;
        for segment in self.segments.iter().skip(index) {
            if segment.first != pos.segment {
                offset = MAGIC.len() as u64;
            }
            while let Ok(Some((doc, end))) = read_record(segment, offset) {
                if !self.in_hole(doc.sequence) {
                    return Some(Pos {
                        segment: segment.first,
                        offset,
                        sequence: doc.sequence,
                        size: end - offset,
                    });
                }
                offset = end;
            }
        }
        None
    }

    fn write_commit(&mut self) {
        let mut slot = [0u8; 16];
        slot[0..8].copy_from_slice(&self.committed.to_le_bytes());
        let sum = crc(&[&slot[0..8]]);
        slot[8..12].copy_from_slice(&sum.to_le_bytes());
        self.commit_slot ^= 1;
        let _ = self.commit_file.write_all_at(&slot, self.commit_slot * 16);
    }

    /// Moves the commit position to the oldest record not done, persists it, deletes the
    /// segments all done.
    fn advance_commit(&mut self) {
        let next = self
            .in_flight
            .front()
            .or(self.cursor.as_ref())
            .map_or(self.next_sequence, |p| p.sequence);
        self.holes.retain(|&(_, to)| to >= next);
        if next != self.committed {
            self.committed = next;
            self.write_commit();
            self.delete_done_segments();
        }
    }

    /// Deletes every segment before the last whose records are all done.
    fn delete_done_segments(&mut self) {
        while self.segments.len() > 1 {
            let done = self.segments[0]
                .last
                .is_none_or(|last| last < self.committed);
            if !done {
                break;
            }
            if let Some(segment) = self.segments.pop_front() {
                let _ = std::fs::remove_file(&segment.path);
            }
        }
    }

    /// A fresh segment for records from `first` on.
    fn new_segment(&mut self, first: u64) -> Result<(), String> {
        let path = self.dir.join(segment_name(first));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("cannot create", &path, e))?;
        file.set_len(0)
            .and_then(|_| file.write_all(MAGIC))
            .map_err(|e| io_error("cannot write", &path, e))?;
        self.segments.push_back(Segment {
            first,
            path,
            file,
            len: MAGIC.len() as u64,
            last: None,
        });
        Ok(())
    }

    fn record_size(doc: &Doc<Body>) -> u64 {
        HEADER + doc.body.as_ref().len() as u64
    }
}

impl Store<Body> for Spool {
    fn waiting(&self) -> usize {
        self.waiting
    }

    fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn has_room(&self, doc: &Doc<Body>) -> bool {
        self.live_bytes == 0 || self.live_bytes + Spool::record_size(doc) <= self.max_bytes
    }

    fn push(&mut self, doc: Doc<Body>) -> Result<u64, String> {
        if self.closed {
            return Err("the spool is closed".into());
        }
        let body = doc.body.as_ref();
        let len = u32::try_from(body.len())
            .ok()
            .filter(|l| u64::from(*l) <= MAX_BODY)
            .ok_or_else(|| format!("a document of {} bytes is too big", body.len()))?;
        let sequence = self.next_sequence;
        let needs_segment = self
            .segments
            .back()
            .is_none_or(|s| s.len >= self.segment_bytes);
        if needs_segment {
            self.new_segment(sequence)?;
        }
        let mut record = Vec::with_capacity(HEADER as usize + body.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(&sequence.to_le_bytes());
        record.extend_from_slice(&doc.pts.unwrap_or(NO_PTS).to_le_bytes());
        record.extend_from_slice(body);
        let sum = crc(&[&record[8..]]);
        record[4..8].copy_from_slice(&sum.to_le_bytes());
        let segment = self.segments.back_mut().ok_or("the spool has no segment")?;
        let offset = segment.len;
        if let Err(e) = segment.file.write_all(&record) {
            // Leave no partial record behind.
            let _ = segment.file.set_len(offset);
            return Err(io_error("cannot write", &segment.path, e));
        }
        segment.len += record.len() as u64;
        segment.last = Some(sequence);
        let pos = Pos {
            segment: segment.first,
            offset,
            sequence,
            size: record.len() as u64,
        };
        self.next_sequence += 1;
        self.waiting += 1;
        self.live_bytes += pos.size;
        self.dirty = true;
        if self.cursor.is_none() {
            self.cursor = Some(pos);
        }
        Ok(sequence)
    }

    fn drop_oldest(&mut self) -> bool {
        let Some(pos) = self.cursor.filter(|_| !self.closed) else {
            return false;
        };
        if !self.in_flight.is_empty() {
            match self.holes.last_mut() {
                Some((_, to)) if *to + 1 == pos.sequence => *to = pos.sequence,
                _ => self.holes.push((pos.sequence, pos.sequence)),
            }
        }
        self.cursor = self.after(pos);
        self.waiting -= 1;
        self.live_bytes -= pos.size;
        self.advance_commit();
        true
    }

    fn take(&mut self, max: usize) -> Result<Vec<Doc<Body>>, String> {
        let mut docs = Vec::new();
        while docs.len() < max && !self.closed {
            let Some(pos) = self.cursor else {
                break;
            };
            let segment = self
                .segment(pos.segment)
                .ok_or("a spool segment vanished")?;
            match read_record(segment, pos.offset)? {
                Some((doc, _)) => docs.push(doc),
                None => {
                    return Err(format!(
                        "{}: the record at offset {} is damaged",
                        segment.path.display(),
                        pos.offset
                    ));
                }
            }
            self.in_flight.push_back(pos);
            self.waiting -= 1;
            self.cursor = self.after(pos);
        }
        Ok(docs)
    }

    fn commit(&mut self, n: usize) -> Result<(), String> {
        if self.closed {
            return Ok(());
        }
        for _ in 0..n {
            let Some(pos) = self.in_flight.pop_front() else {
                break;
            };
            self.live_bytes -= pos.size;
        }
        self.advance_commit();
        Ok(())
    }

    fn rewind(&mut self) {
        if let Some(first) = self.in_flight.front().copied() {
            self.waiting += self.in_flight.len();
            self.in_flight.clear();
            // Read again from the oldest in flight; `after` skips the holes.
            self.cursor = Some(first);
        }
    }

    fn close(&mut self) -> u64 {
        if !self.closed {
            self.closed = true;
            for segment in &self.segments {
                let _ = segment.file.sync_data();
            }
            let _ = self.commit_file.sync_data();
            // Another element may use the folder from now on; this one changes nothing more.
            self.lock = None;
        }
        0
    }

    fn sync_handle(&mut self) -> Option<File> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        self.segments.back().and_then(|s| s.file.try_clone().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::queue::{Counters, Overflow, PushError, Queue};
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ovlva-spool-{name}-{}-{}",
            std::process::id(),
            crate::publish::backoff::random_u64()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn doc(text: &str) -> Doc<Body> {
        Doc {
            body: Body::from(text),
            pts: Some(7),
            sequence: 0,
        }
    }

    fn text(d: &Doc<Body>) -> String {
        String::from_utf8_lossy(d.body.as_ref()).into_owned()
    }

    fn take_all(s: &mut Spool) -> Vec<String> {
        s.take(usize::MAX).unwrap().iter().map(text).collect()
    }

    fn segments(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".seg"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn delivers_in_order_and_numbers_the_records() {
        let dir = scratch("order");
        let (mut s, opened) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(opened, Opened::default());
        for n in 0..5 {
            assert_eq!(s.push(doc(&format!("d{n}"))).unwrap(), n);
        }
        let first = s.take(2).unwrap();
        assert_eq!(first.iter().map(text).collect::<Vec<_>>(), ["d0", "d1"]);
        assert_eq!(first[0].pts, Some(7));
        assert_eq!((s.waiting(), s.in_flight()), (3, 2));
        s.commit(1).unwrap();
        s.rewind();
        assert_eq!(take_all(&mut s), ["d1", "d2", "d3", "d4"]);
        s.commit(4).unwrap();
        assert_eq!((s.waiting(), s.in_flight(), s.live_bytes), (0, 0, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_restart_delivers_what_was_left_first_and_goes_on_numbering() {
        let dir = scratch("restart");
        {
            let (mut s, _) = Spool::open(&dir, 1 << 20).unwrap();
            for n in 0..6 {
                s.push(doc(&format!("d{n}"))).unwrap();
            }
            s.take(4).unwrap();
            // 0 and 1 confirmed; 2 and 3 in flight when the process goes away.
            s.commit(2).unwrap();
        }
        let (mut s, opened) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(opened.recovered, 4);
        assert_eq!(s.push(doc("new")).unwrap(), 6, "numbering goes on");
        assert_eq!(take_all(&mut s), ["d2", "d3", "d4", "d5", "new"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_counted() {
        let dir = scratch("torn");
        {
            let (mut s, _) = Spool::open(&dir, 1 << 20).unwrap();
            for n in 0..3 {
                s.push(doc(&format!("document {n}"))).unwrap();
            }
        }
        let seg = dir.join(&segments(&dir)[0]);
        let len = std::fs::metadata(&seg).unwrap().len();
        // The last record loses its final 3 bytes, as if the process died in its write.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut s, opened) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!((opened.recovered, opened.discarded), (2, 1));
        assert!(opened.damage[0].contains("torn"), "{:?}", opened.damage);
        assert_eq!(s.push(doc("after")).unwrap(), 2, "the torn record's number");
        assert_eq!(take_all(&mut s), ["document 0", "document 1", "after"]);
        drop(s);

        // A flipped byte inside the last record: the checksum finds it.
        let len = std::fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&seg)
            .unwrap();
        f.write_all_at(b"X", len - 2).unwrap();
        let (mut s, opened) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!((opened.recovered, opened.discarded), (2, 1));
        assert_eq!(take_all(&mut s), ["document 0", "document 1"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn done_segments_are_deleted() {
        let dir = scratch("segments");
        // 4096-byte segments (an eighth of 32 KiB): 1024-byte records, 4 per segment.
        let (mut s, _) = Spool::open(&dir, 32 << 10).unwrap();
        let big = "x".repeat(1000);
        for _ in 0..12 {
            s.push(doc(&big)).unwrap();
        }
        assert_eq!(segments(&dir).len(), 3);
        s.take(9).unwrap();
        s.commit(8).unwrap();
        assert_eq!(
            segments(&dir),
            [segment_name(8)],
            "the first two segments are done"
        );
        s.commit(1).unwrap();
        drop(s);
        let (mut s, opened) = Spool::open(&dir, 32 << 10).unwrap();
        assert_eq!(opened.recovered, 3);
        assert_eq!(s.take(10).unwrap()[0].sequence, 9);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_size_bound_drops_the_oldest_or_blocks() {
        let dir = scratch("bound");
        // Each record is 24 + 100 bytes: 10 fit in 1240 bytes.
        let body = "y".repeat(100);
        let (s, _) = Spool::open(&dir, 1240).unwrap();
        let q = Queue::with_store(Box::new(s), Overflow::DropOldest);
        for n in 0..25u64 {
            let mut d = doc(&body);
            d.pts = Some(n);
            q.push(d).unwrap();
        }
        assert_eq!(Counters::get(&q.counters.dropped), 15);
        let left = q.take(100, Duration::ZERO).unwrap();
        assert_eq!(
            left.iter().map(|d| d.pts.unwrap()).collect::<Vec<_>>(),
            (15..25).collect::<Vec<_>>()
        );
        q.stop();
        drop(q);
        // The drops were committed: a restart finds only the last ten.
        let (s, opened) = Spool::open(&dir, 1240).unwrap();
        assert_eq!(opened.recovered, 10);

        let q = std::sync::Arc::new(Queue::with_store(Box::new(s), Overflow::Block));
        let pusher = {
            let q = q.clone();
            let body = body.clone();
            std::thread::spawn(move || q.push(doc(&body)))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!pusher.is_finished(), "blocks while the spool is full");
        assert_eq!(q.take(1, Duration::ZERO).unwrap().len(), 1);
        std::thread::sleep(Duration::from_millis(30));
        assert!(!pusher.is_finished(), "in flight still counts");
        q.commit(1).unwrap();
        assert_eq!(pusher.join().unwrap(), Ok(25));
        q.set_flushing(true);
        assert_eq!(q.push(doc(&body)), Err(PushError::Flushing));
        let stopped = q.stop();
        assert_eq!(
            (stopped.lost, stopped.kept),
            (0, 10),
            "the spool keeps them"
        );
        assert_eq!(Counters::get(&q.counters.dropped), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_dropped_while_others_are_in_flight_stay_dropped_after_a_rewind() {
        let dir = scratch("holes");
        let body = "z".repeat(100);
        let (s, _) = Spool::open(&dir, 3 * 124).unwrap();
        let q = Queue::with_store(Box::new(s), Overflow::DropOldest);
        let push = |n: u64| {
            let mut d = doc(&body);
            d.pts = Some(n);
            q.push(d).unwrap();
        };
        let pts = |docs: Vec<Doc<Body>>| docs.iter().map(|d| d.pts.unwrap()).collect::<Vec<_>>();
        for n in 0..3 {
            push(n);
        }
        assert_eq!(pts(q.take(1, Duration::ZERO).unwrap()), [0]);
        // Full: 3 and 4 push out the waiting 1 and 2; 0 stays in flight.
        push(3);
        push(4);
        assert_eq!(pts(q.take(1, Duration::ZERO).unwrap()), [3]);
        push(5);
        assert_eq!(Counters::get(&q.counters.dropped), 3, "1, 2 and 4");
        q.rewind();
        assert_eq!(pts(q.take(10, Duration::ZERO).unwrap()), [0, 3, 5]);
        q.commit(3).unwrap();
        assert!(q.wait_drained(Duration::ZERO));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn two_users_of_one_folder_are_refused() {
        let dir = scratch("lock");
        let (s, _) = Spool::open(&dir, 1 << 20).unwrap();
        let err = Spool::open(&dir, 1 << 20).err().unwrap();
        assert!(err.contains("in use by another element"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(s);
        assert!(Spool::open(&dir, 1 << 20).is_ok(), "free again after close");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_commit_slot_falls_back_to_the_other() {
        let dir = scratch("commit");
        {
            let (mut s, _) = Spool::open(&dir, 1 << 20).unwrap();
            for n in 0..4 {
                s.push(doc(&format!("d{n}"))).unwrap();
            }
            s.take(1).unwrap();
            s.commit(1).unwrap(); // slot 1 = 1
            s.take(1).unwrap();
            s.commit(1).unwrap(); // slot 0 = 2
        }
        let f = OpenOptions::new()
            .write(true)
            .open(dir.join("commit"))
            .unwrap();
        f.write_all_at(&[0xff], 3).unwrap();
        let (mut s, opened) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(opened.recovered, 3, "from the older slot: d0 was done");
        assert_eq!(take_all(&mut s), ["d1", "d2", "d3"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

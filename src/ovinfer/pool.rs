//! A model instance: one compiled model and a pool of infer requests, used by one `ovinfer` or
//! shared by every `ovinfer` with the same `model-instance-id`.
//!
//! One inference is a [`Job`]: a request holding a batch of `batch` frames (one, unless
//! `batch-size` is set), each in its own slot of the input tensor. Elements add frames to the
//! instance's batch being filled, which may mix frames of several streams; the batch starts
//! when it is full, or earlier when the owner of one of its frames needs that frame's results
//! (a drain, EOS, a live stream's bound on frames held). Each owner keeps a [`Slot`] with its
//! frame and reads its slot's outputs in place; the request goes back to the pool once every
//! slot is read.
//!
//! When no request is free, the oldest started job of the whole instance (whichever elements
//! own its frames) is harvested: its outputs are copied into the job and its request goes back
//! to the pool. So an element whose stream stalls never holds requests the other streams need,
//! and no element waits on another one's streaming thread.
//!
//! A frame is written (scaled or packed into its slot) with no lock held: its job's request is
//! taken out while it is (the job is `Writing`), so streams sharing an instance prepare their
//! frames at the same time. An element wanting that job meanwhile (for the next slot of its
//! batch, or to start it) waits for the write.
//!
//! Lock order: the pool, then a job; never the pool while a job is locked.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::batch::BatchLayout;
use super::decode::Tensor;
use super::remote::{Outputs, Remote, RemoteRequest};
use crate::openvino::{CompiledModel, InferRequest};

/// What runs the inferences: a model compiled on a local OpenVINO device, or a model on a
/// KServe v2 server (`server=`). The pool and its jobs are the same for both.
#[derive(Clone)]
pub enum Backend {
    Local(Arc<CompiledModel>),
    Remote(Arc<Remote>),
}

impl Backend {
    fn create_request(&self) -> Result<Request, String> {
        match self {
            Backend::Local(model) => model
                .create_request()
                .map(Request::Local)
                .map_err(|e| e.to_string()),
            Backend::Remote(remote) => Ok(Request::Remote(RemoteRequest::new(remote.clone()))),
        }
    }
}

/// One request of the pool: an OpenVINO infer request, or a call to the server.
pub enum Request {
    Local(InferRequest),
    Remote(RemoteRequest),
}

impl Request {
    /// The request's own input: the model's tensor (local) or the converter's pixels (remote).
    pub fn input_bytes(&mut self) -> Result<&mut [u8], String> {
        match self {
            Request::Local(r) => r.input_bytes().map_err(|e| e.to_string()),
            Request::Remote(r) => Ok(r.input_bytes()),
        }
    }

    /// Starts the inference of the first `frames` slots (a local request always infers its
    /// whole batch; a remote one sends only those frames when the served batch is dynamic).
    fn start(&mut self, frames: usize) -> Result<(), String> {
        match self {
            Request::Local(r) => r.start().map_err(|e| e.to_string()),
            Request::Remote(r) => r.start(frames),
        }
    }

    /// Waits for the inference: whether it gave results (a remote call that failed gives
    /// none, and its frames pass without results).
    fn wait(&mut self) -> Result<bool, String> {
        match self {
            Request::Local(r) => r.wait().map(|()| true).map_err(|e| e.to_string()),
            Request::Remote(r) => r.wait(),
        }
    }

    fn is_done(&mut self) -> Result<bool, String> {
        match self {
            Request::Local(r) => r.is_done().map_err(|e| e.to_string()),
            Request::Remote(r) => Ok(r.is_done()),
        }
    }

    fn output_f32(&self, index: usize) -> Result<(Vec<usize>, &[f32]), String> {
        match self {
            Request::Local(r) => r.output_f32(index).map_err(|e| e.to_string()),
            Request::Remote(r) => r.output_f32(index),
        }
    }

    /// One inference of the whole batch.
    fn infer(&mut self) -> Result<bool, String> {
        self.start(usize::MAX)?;
        self.wait()
    }
}

/// What must live while an inference runs: the mapped frame a request reads without a copy.
pub type Keep = Box<dyn Send>;

/// Writes a frame into slot `slot` of a request's input; returns what the input then borrows.
pub type Write<'a> = dyn FnMut(&mut Request, usize) -> Result<Option<Keep>, String> + 'a;

enum JobState {
    /// Taking frames, not started, with what its input borrows.
    Filling(Request, Vec<Keep>),
    /// A frame being written into it: the request and its borrows are with the writer, which
    /// puts them back as `Filling` (or starts the job).
    Writing,
    /// Started, with what its input borrows (dropped after the inference: freeing a request
    /// waits for it).
    Running(Request, Vec<Keep>),
    /// Over: the outputs are in the request, read in place by the slots' owners.
    Done(Request),
    /// Harvested for another frame's need of a request (or failed): the outputs (`None`: a
    /// remote call that failed, the frames pass without results), or the error.
    Copied(Result<Option<Outputs>, String>),
    /// Every slot read, the request back in the pool.
    Closed,
}

struct JobInner {
    state: JobState,
    /// Frames added.
    frames: usize,
    /// Slots their owners have not read (nor discarded) yet.
    unread: usize,
}

/// One inference of a batch of frames.
pub struct Job(Mutex<JobInner>);

/// One frame's place in a job.
pub struct Slot {
    job: Arc<Job>,
    index: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    /// Whether the frame's results can be read without waiting.
    pub fn is_done(&self) -> Result<bool, String> {
        match &mut lock(&self.job.0).state {
            JobState::Filling(..) | JobState::Writing => Ok(false),
            JobState::Running(request, _) => request.is_done(),
            _ => Ok(true),
        }
    }
}

struct Pool {
    idle: Vec<Request>,
    /// The job taking frames (only while it has free slots).
    filling: Option<Arc<Job>>,
    /// Started jobs still holding their request, oldest first (jobs closed meanwhile are
    /// skipped).
    running: VecDeque<Arc<Job>>,
    /// Jobs a frame is being written into.
    writing: Vec<Arc<Job>>,
}

impl Pool {
    fn is_writing(&self, job: &Arc<Job>) -> bool {
        self.writing.iter().any(|j| Arc::ptr_eq(j, job))
    }

    /// Whether the job taking frames has a frame being written into it (the next frame waits).
    fn filling_is_written(&self) -> bool {
        self.filling
            .as_ref()
            .is_some_and(|job| self.is_writing(job))
    }
}

/// A compiled model and its infer requests.
pub struct Instance {
    /// Declared before the model: requests are dropped first.
    pool: Mutex<Pool>,
    /// Signalled when a request comes back, a job starts (and so can be harvested) or a write
    /// ends.
    changed: Condvar,
    /// Kept alive as long as its requests.
    _backend: Backend,
    /// Number of requests.
    pub size: usize,
    /// Frames per inference.
    pub batch: usize,
    /// Each output's shape for one frame.
    slot_shapes: Vec<Vec<usize>>,
    /// Where each frame's values lie in a job's outputs.
    layout: BatchLayout,
    /// What the instance was made for (model, device, hint, batch, pre-processing): elements
    /// joining it by id must match.
    pub config: String,
    /// How long one inference took when the instance was made (the second of two, the first
    /// one paying OpenVINO's lazy set-up): what a frame's inference is expected to take.
    pub inference_time: Duration,
}

impl Instance {
    pub fn new(
        backend: Backend,
        size: usize,
        slot_shapes: Vec<Vec<usize>>,
        layout: BatchLayout,
        config: String,
    ) -> Result<Self, String> {
        let mut idle = (0..size)
            .map(|_| backend.create_request())
            .collect::<Result<Vec<_>, _>>()?;
        // Warm-up: the first frame does not pay for the first inference, and the time of one is
        // known before any frame comes (whatever the tensor holds: the outputs are not read).
        // A server that fails it is not an error here: its frames follow the failure policy.
        let mut inference_time = Duration::ZERO;
        if let Some(request) = idle.first_mut() {
            for _ in 0..2 {
                let started = Instant::now();
                let inferred = request
                    .infer()
                    .map_err(|e| format!("the warm-up inference failed: {e}"))?;
                inference_time = if inferred {
                    started.elapsed()
                } else {
                    Duration::ZERO
                };
            }
        }
        Ok(Instance {
            pool: Mutex::new(Pool {
                idle,
                filling: None,
                running: VecDeque::new(),
                writing: Vec::new(),
            }),
            changed: Condvar::new(),
            _backend: backend,
            size,
            batch: layout.batch(),
            slot_shapes,
            layout,
            config,
            inference_time,
        })
    }

    /// How many of a live stream's frames may wait inside the element for their turn (their
    /// inference or their batch's other frames): nireq x batch-size - 1.
    pub fn frames_held(&self) -> usize {
        (self.size * self.batch).saturating_sub(1)
    }

    /// Adds a frame (written by `write`) if a slot is free without waiting for an inference: in
    /// the batch being filled, else in an idle request. `None`: every request is busy.
    pub fn try_add(&self, write: &mut Write<'_>) -> Option<Result<Slot, String>> {
        let pool = self.wait_for_filling(lock(&self.pool));
        (pool.filling.is_some() || !pool.idle.is_empty()).then(|| self.add_to(pool, write))
    }

    /// Adds a frame (written by `write`): at once if a slot is free, else after harvesting the
    /// instance's oldest job, else (other elements harvesting every started job right now)
    /// when a request comes back.
    pub fn add(&self, write: &mut Write<'_>) -> Result<Slot, String> {
        let mut pool = lock(&self.pool);
        loop {
            pool = self.wait_for_filling(pool);
            if pool.filling.is_some() || !pool.idle.is_empty() {
                return self.add_to(pool, write);
            }
            if let Some(job) = pool.running.pop_front() {
                drop(pool);
                self.harvest(&job);
                pool = lock(&self.pool);
                continue;
            }
            pool = self.changed.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits while another frame is being written into the batch being filled (never at
    /// batch 1: a job is full with its first frame).
    fn wait_for_filling<'a>(&self, mut pool: MutexGuard<'a, Pool>) -> MutexGuard<'a, Pool> {
        while pool.filling_is_written() {
            pool = self.changed.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
        pool
    }

    /// Writes a frame into the next slot of the filling job (a new one from an idle request if
    /// none), with no lock held while it writes, and starts the job when that fills it.
    fn add_to(
        &self,
        mut pool: MutexGuard<'_, Pool>,
        write: &mut Write<'_>,
    ) -> Result<Slot, String> {
        let job = match &pool.filling {
            Some(job) => job.clone(),
            None => {
                let request = pool.idle.pop().ok_or("no free infer request")?;
                Arc::new(Job(Mutex::new(JobInner {
                    state: JobState::Filling(request, Vec::new()),
                    frames: 0,
                    unread: 0,
                })))
            }
        };
        // Reserve the slot and take the request out.
        let (mut request, mut keeps, index) = {
            let mut inner = lock(&job.0);
            let (request, keeps) = match std::mem::replace(&mut inner.state, JobState::Writing) {
                JobState::Filling(request, keeps) => (request, keeps),
                other => {
                    inner.state = other;
                    return Err("the batch being filled was already started".into());
                }
            };
            inner.frames += 1;
            pool.filling = (inner.frames < self.batch).then(|| job.clone());
            (request, keeps, inner.frames - 1)
        };
        pool.writing.push(job.clone());
        drop(pool);
        // A panic in `write` must not leave the job `Writing` (every element wanting it would
        // wait forever): it fails the frame like an error, and the request stays in the pool.
        let written =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(&mut request, index)))
                .unwrap_or_else(|_| Err("writing the frame into the input tensor panicked".into()));
        let mut pool = lock(&self.pool);
        pool.writing.retain(|j| !Arc::ptr_eq(j, &job));
        let mut inner = lock(&job.0);
        let result = match written {
            Ok(keep) => {
                keeps.extend(keep);
                inner.unread += 1;
                Ok(Slot {
                    job: job.clone(),
                    index,
                })
            }
            // The slot is free again (no other frame was added meanwhile: they waited).
            Err(e) => {
                inner.frames -= 1;
                Err(e)
            }
        };
        inner.state = JobState::Filling(request, keeps);
        let is_filling = pool.filling.as_ref().is_some_and(|f| Arc::ptr_eq(f, &job));
        if inner.frames == 0 {
            // A new job whose only frame failed: the request goes back.
            if let JobState::Filling(request, _) =
                std::mem::replace(&mut inner.state, JobState::Closed)
            {
                pool.idle.push(request);
            }
            if is_filling {
                pool.filling = None;
            }
        } else if inner.frames == self.batch {
            self.start(&mut pool, &job, &mut inner);
        } else if !is_filling {
            // A failed last slot: the batch takes frames again, unless another one took its
            // place meanwhile, and then it starts as it is.
            if pool.filling.is_none() {
                pool.filling = Some(job.clone());
            } else {
                self.start(&mut pool, &job, &mut inner);
            }
        }
        // Elements waiting for this write, or for a free slot or request.
        self.changed.notify_all();
        result
    }

    /// Starts a filling job (the pool and the job locked by the caller). A failure to start is
    /// its slots' result.
    fn start(&self, pool: &mut Pool, job: &Arc<Job>, inner: &mut JobInner) {
        if !matches!(inner.state, JobState::Filling(..)) {
            return;
        }
        let JobState::Filling(mut request, keeps) =
            std::mem::replace(&mut inner.state, JobState::Closed)
        else {
            unreachable!("matched above");
        };
        match request.start(inner.frames) {
            Ok(()) => {
                inner.state = JobState::Running(request, keeps);
                pool.running.push_back(job.clone());
                // An element waiting in `add` can harvest it now.
                self.changed.notify_all();
            }
            Err(e) => {
                inner.state = JobState::Copied(Err(e));
                drop(keeps);
                pool.idle.push(request);
                self.changed.notify_all();
            }
        }
    }

    /// Starts the job if it is still taking frames: a partial batch, because one of its frames
    /// is wanted now. Only the instance's filling job can be taking frames, so another job is
    /// left alone at once (its lock may be held by a reader waiting for its inference, and the
    /// pool must not wait for that).
    fn seal(&self, job: &Arc<Job>) {
        let mut pool = lock(&self.pool);
        // A frame being written into it: the writer starts it if that fills it.
        while pool.is_writing(job) {
            pool = self.changed.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
        if !pool.filling.as_ref().is_some_and(|f| Arc::ptr_eq(f, job)) {
            return;
        }
        pool.filling = None;
        let mut inner = lock(&job.0);
        self.start(&mut pool, job, &mut inner);
    }

    /// Gives a request back to the pool.
    fn release(&self, request: Request) {
        lock(&self.pool).idle.push(request);
        // All: the one woken could fail to write its frame, or take a free slot of a batch
        // another element starts with this request, and leave the others asleep.
        self.changed.notify_all();
    }

    /// Copies a started job's outputs into it and frees its request. The job stays locked
    /// meanwhile, so an owner reading its slot at the same time waits and then finds the copy.
    fn harvest(&self, job: &Job) {
        let mut inner = lock(&job.0);
        let request = match std::mem::replace(&mut inner.state, JobState::Closed) {
            JobState::Running(mut request, keeps) => {
                let waited = request.wait();
                drop(keeps);
                inner.state = JobState::Copied(waited.and_then(|inferred| {
                    if inferred {
                        self.copy(&request).map(Some)
                    } else {
                        Ok(None)
                    }
                }));
                request
            }
            JobState::Done(request) => {
                inner.state = JobState::Copied(self.copy(&request).map(Some));
                request
            }
            other => {
                inner.state = other;
                return;
            }
        };
        drop(inner);
        self.release(request);
    }

    fn copy(&self, request: &Request) -> Result<Outputs, String> {
        (0..self.slot_shapes.len())
            .map(|i| {
                let (shape, data) = request.output_f32(i)?;
                Ok((shape, data.to_vec()))
            })
            .collect()
    }

    /// Waits for the slot's inference (starting its batch if it is still taking frames) and
    /// gives its outputs, in place or as copied by a harvest, to `read`. `None`: the frame has
    /// no results (its remote call failed).
    pub fn read<R>(
        &self,
        slot: Slot,
        read: impl FnOnce(&[Tensor<'_>]) -> R,
    ) -> Result<Option<R>, String> {
        self.seal(&slot.job);
        let mut inner = lock(&slot.job.0);
        if let JobState::Running(..) = inner.state {
            let JobState::Running(mut request, keeps) =
                std::mem::replace(&mut inner.state, JobState::Closed)
            else {
                unreachable!("matched above");
            };
            let waited = request.wait();
            match waited {
                Ok(true) => inner.state = JobState::Done(request),
                Ok(false) | Err(_) => {
                    inner.state = JobState::Copied(waited.map(|_| None));
                    drop(keeps);
                    drop(inner);
                    self.forget(&slot.job);
                    self.release(request);
                    inner = lock(&slot.job.0);
                }
            }
        }
        let result = match &inner.state {
            JobState::Done(request) => (0..self.slot_shapes.len())
                .map(|i| request.output_f32(i).map(|(_, data)| data))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|outputs| self.read_slot(slot.index, &outputs, read))
                .map(Some),
            JobState::Copied(Ok(Some(outputs))) => {
                let data: Vec<&[f32]> = outputs.iter().map(|(_, d)| d.as_slice()).collect();
                self.read_slot(slot.index, &data, read).map(Some)
            }
            JobState::Copied(Ok(None)) => Ok(None),
            JobState::Copied(Err(e)) => Err(e.clone()),
            JobState::Filling(..) | JobState::Writing | JobState::Running(..) => {
                Err("the inference never started".into())
            }
            JobState::Closed => Err("the frame's results were already read".into()),
        };
        inner.unread = inner.unread.saturating_sub(1);
        if inner.unread == 0
            && let JobState::Done(request) = std::mem::replace(&mut inner.state, JobState::Closed)
        {
            drop(inner);
            self.forget(&slot.job);
            self.release(request);
        }
        result
    }

    /// Gives `read` slot `index`'s part of each output (`outputs`: the whole batch's), with the
    /// shape of one frame's output.
    fn read_slot<R>(
        &self,
        index: usize,
        outputs: &[&[f32]],
        read: impl FnOnce(&[Tensor<'_>]) -> R,
    ) -> Result<R, String> {
        let frames = outputs
            .iter()
            .enumerate()
            .map(|(i, data)| {
                self.layout.frame(i, data, index).ok_or_else(|| {
                    format!(
                        "output {i} holds {} values, not the results of frame {index} of a batch of {}",
                        data.len(),
                        self.batch
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tensors: Vec<Tensor<'_>> = self
            .slot_shapes
            .iter()
            .zip(&frames)
            .map(|(shape, data)| Tensor { shape, data })
            .collect();
        Ok(read(&tensors))
    }

    /// Ends a slot whose results are not wanted (flush, stop).
    pub fn discard(&self, slot: Slot) {
        let _ = self.read(slot, |_| ());
    }

    /// Takes a job whose request goes back out of the harvest queue.
    fn forget(&self, job: &Arc<Job>) {
        lock(&self.pool).running.retain(|j| !Arc::ptr_eq(j, job));
    }

    /// Requests idle right now.
    #[cfg(test)]
    fn idle(&self) -> usize {
        lock(&self.pool).idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openvino::Core;

    /// The tiny colour classifier (f32 [N,3,16,16] -> softmax of the channel means) compiled
    /// on the CPU for batches of `batch`, in an instance of `size` requests.
    fn instance(size: usize, batch: usize) -> Instance {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/tiny/colour_classifier.onnx");
        let core = Core::new().expect("OpenVINO runtime (run make setup)");
        let mut model = core.read_model(&path).expect("tiny model (run make setup)");
        model
            .reshape_input(&[batch as i64, 3, 16, 16])
            .expect("reshapes");
        let compiled = core.compile(&model, "CPU", &[]).expect("compiles");
        let one = vec![vec![1, 3]];
        let layout = BatchLayout::new(&one, &[vec![batch, 3]], batch, |_| None).expect("batches");
        let backend = Backend::Local(Arc::new(compiled));
        Instance::new(backend, size, one, layout, "tiny".into()).expect("requests")
    }

    /// Writes one colour into the slot: channel `c` at 1.0, the others at 0.
    fn colour(c: usize) -> impl FnMut(&mut Request, usize) -> Result<Option<Keep>, String> {
        move |request, slot| {
            let bytes = request.input_bytes()?;
            let len = 3 * 16 * 16 * 4;
            let frame = &mut bytes[slot * len..(slot + 1) * len];
            for (i, v) in frame.chunks_exact_mut(4).enumerate() {
                let value: f32 = if i / 256 == c { 1.0 } else { 0.0 };
                v.copy_from_slice(&value.to_ne_bytes());
            }
            Ok(None)
        }
    }

    /// The slot's class and its output shape.
    fn top(instance: &Instance, slot: Slot) -> (usize, Vec<usize>) {
        instance
            .read(slot, |t| {
                let scores = t[0].data;
                let best = (0..scores.len())
                    .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
                    .expect("scores");
                (best, t[0].shape.to_vec())
            })
            .expect("reads")
            .expect("results")
    }

    fn add(instance: &Instance, c: usize) -> Slot {
        instance.add(&mut colour(c)).expect("adds")
    }

    #[test]
    fn a_job_harvested_for_another_stream_keeps_its_own_results() {
        let instance = instance(1, 1);
        // Stream 1 starts a red frame and then stalls, holding the only request.
        let red = add(&instance, 0);
        assert!(
            instance.try_add(&mut colour(2)).is_none(),
            "no free request"
        );
        // Stream 2 needs a request: the red job is harvested rather than waited for.
        let blue = add(&instance, 2);
        assert_eq!(top(&instance, red), (0, vec![1, 3]));
        assert_eq!(top(&instance, blue).0, 2);
        assert_eq!(instance.idle(), 1, "every request is back in the pool");
    }

    #[test]
    fn discarded_and_read_slots_return_their_requests() {
        let instance = instance(2, 1);
        let slots: Vec<Slot> = (0..2)
            .map(|c| {
                instance
                    .try_add(&mut colour(c))
                    .expect("free")
                    .expect("adds")
            })
            .collect();
        assert!(instance.try_add(&mut colour(0)).is_none());
        for slot in &slots {
            while !slot.is_done().expect("polls") {
                std::thread::yield_now();
            }
        }
        let [first, second] = <[Slot; 2]>::try_from(slots).ok().expect("two slots");
        instance.discard(first);
        assert_eq!(top(&instance, second).0, 1);
        assert_eq!(instance.idle(), 2);
        assert!(
            lock(&instance.pool).running.is_empty(),
            "no job left queued"
        );
    }

    #[test]
    fn a_failed_write_gives_the_request_back() {
        let instance = instance(1, 1);
        let failed = instance.add(&mut |_: &mut Request, _| Err("bad frame".to_string()));
        assert_eq!(failed.err().as_deref(), Some("bad frame"));
        assert_eq!(instance.idle(), 1);
        assert_eq!(top(&instance, add(&instance, 1)).0, 1);
    }

    #[test]
    fn a_batch_gives_each_slot_its_own_frame() {
        let instance = instance(2, 4);
        let colours = [2, 0, 1, 2, 1, 0, 0, 2];
        let slots: Vec<Slot> = colours.iter().map(|&c| add(&instance, c)).collect();
        assert!(
            instance.try_add(&mut colour(0)).is_none(),
            "two full batches started"
        );
        let read: Vec<(usize, Vec<usize>)> = slots.into_iter().map(|s| top(&instance, s)).collect();
        assert_eq!(read.iter().map(|r| r.0).collect::<Vec<_>>(), colours);
        assert!(read.iter().all(|r| r.1 == [1, 3]), "one frame's shape");
        assert_eq!(instance.idle(), 2);
    }

    #[test]
    fn a_partial_batch_starts_when_a_frame_is_wanted() {
        let instance = instance(1, 4);
        let green = add(&instance, 1);
        let blue = add(&instance, 2);
        assert!(!green.is_done().expect("polls"), "waits for more frames");
        assert_eq!(top(&instance, blue).0, 2);
        // Started by that read: the batch takes no more frames, the next goes into a new one.
        assert!(instance.try_add(&mut colour(0)).is_none());
        assert_eq!(top(&instance, green).0, 1);
        assert_eq!(instance.idle(), 1);
        let red = add(&instance, 0);
        instance.discard(red);
        assert_eq!(
            instance.idle(),
            1,
            "a discarded partial batch gives its request back"
        );
    }

    #[test]
    fn a_reader_waiting_on_its_batch_does_not_hold_up_the_instance() {
        let instance = Arc::new(instance(2, 2));
        let (red, green) = (add(&instance, 0), add(&instance, 1));
        // One stream decodes its frame slowly, holding the job; another wants its own frame of
        // that job; a third adds a frame to the free request meanwhile.
        let slow = instance.clone();
        let reader = std::thread::spawn(move || {
            slow.read(red, |_| {
                std::thread::sleep(std::time::Duration::from_millis(600))
            })
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let other = instance.clone();
        let waiting = std::thread::spawn(move || top(&other, green).0);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let started = std::time::Instant::now();
        let blue = instance.try_add(&mut colour(2)).expect("a free request");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(300),
            "waited {:?} for the other streams' job",
            started.elapsed()
        );
        assert!(reader.join().expect("no panic").is_ok());
        assert_eq!(waiting.join().expect("no panic"), 1);
        assert_eq!(top(&instance, blue.expect("adds")).0, 2);
    }

    /// Another stream, in a thread: adds a red frame whose writing takes `ms` milliseconds,
    /// then reads its class.
    fn slow_red(instance: &Arc<Instance>, ms: u64) -> std::thread::JoinHandle<usize> {
        let instance = instance.clone();
        std::thread::spawn(move || {
            let mut write = colour(0);
            let red = instance
                .add(&mut |request: &mut Request, slot| {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    write(request, slot)
                })
                .expect("adds");
            top(&instance, red).0
        })
    }

    #[test]
    fn streams_write_their_frames_at_the_same_time() {
        let instance = Arc::new(instance(2, 1));
        let writer = slow_red(&instance, 600);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let started = std::time::Instant::now();
        let blue = add(&instance, 2);
        assert!(
            started.elapsed() < std::time::Duration::from_millis(300),
            "waited {:?} for the other stream's write",
            started.elapsed()
        );
        assert_eq!(top(&instance, blue).0, 2);
        assert_eq!(writer.join().expect("no panic"), 0);
        assert_eq!(instance.idle(), 2);
    }

    #[test]
    fn the_next_frame_of_a_batch_waits_for_the_write_before_it() {
        let instance = Arc::new(instance(1, 2));
        let writer = slow_red(&instance, 300);
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Slot 1 of the same batch (slot 0 is being written): it fills and starts the batch.
        let green = add(&instance, 1);
        assert_eq!(top(&instance, green).0, 1);
        assert_eq!(writer.join().expect("no panic"), 0);
        assert_eq!(instance.idle(), 1);
    }

    #[test]
    fn a_panicking_write_fails_its_frame_only() {
        let instance = instance(1, 2);
        let red = add(&instance, 0);
        let failed = instance.add(&mut |_: &mut Request, _| -> Result<Option<Keep>, String> {
            panic!("a bug in a scaler")
        });
        assert!(failed.err().is_some_and(|e| e.contains("panicked")));
        assert_eq!(
            top(&instance, red).0,
            0,
            "the batch's other frame is inferred"
        );
        assert_eq!(instance.idle(), 1, "the request is back");
    }

    #[test]
    fn a_failed_write_in_a_batch_frees_its_slot() {
        let instance = instance(1, 2);
        let red = add(&instance, 0);
        let failed = instance.add(&mut |_: &mut Request, _| Err("bad frame".to_string()));
        assert_eq!(failed.err().as_deref(), Some("bad frame"));
        // The slot is taken again, by a frame that fills the batch.
        let blue = add(&instance, 2);
        assert!(blue.is_done().is_ok());
        assert_eq!(top(&instance, red).0, 0);
        assert_eq!(top(&instance, blue).0, 2);
        assert_eq!(instance.idle(), 1);
    }

    #[test]
    fn streams_share_a_batch() {
        // Stream 1 adds two frames of a batch of 4, stream 2 the other two and starts it.
        let instance = Arc::new(instance(1, 4));
        let mine = [add(&instance, 0), add(&instance, 1)];
        let other = instance.clone();
        let theirs = std::thread::spawn(move || {
            let slots = [add(&other, 2), add(&other, 2)];
            slots.map(|s| top(&other, s).0)
        });
        assert_eq!(theirs.join().expect("no panic"), [2, 2]);
        assert_eq!(mine.map(|s| top(&instance, s).0), [0, 1]);
        assert_eq!(instance.idle(), 1);
    }
}

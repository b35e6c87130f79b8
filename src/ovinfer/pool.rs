//! A model instance: one compiled model and a pool of infer requests, used by one `ovinfer` or
//! shared by every `ovinfer` with the same `model-instance-id`.
//!
//! An element takes a free request, fills it with a frame and starts it; the started request is
//! a [`Job`] the element keeps with the frame. When no request is free, the oldest job of the
//! whole instance (whichever element started it) is harvested: its outputs are copied into the
//! job and its request goes back to the pool. So an element whose stream stalls never holds
//! requests the other streams need, and no element waits on another one's streaming thread.
//! The element that owns a job normally finishes it itself and reads the outputs in place.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::openvino::{CompiledModel, InferRequest};

/// Outputs of a finished inference: (shape, values) per model output.
pub type Outputs = Vec<(Vec<usize>, Vec<f32>)>;

/// What must live while an inference runs: the mapped frame a request reads without a copy.
pub type Keep = Box<dyn Send>;

enum JobState {
    /// Started, the request still attached, with what its input borrows (dropped after it:
    /// freeing a request waits for its inference).
    Running(InferRequest, Option<Keep>),
    /// Harvested by another element's need for a request: the outputs, or the error.
    Harvested(Result<Outputs, String>),
    /// Finished or discarded by its owner.
    Closed,
}

/// One started inference.
pub struct Job(Mutex<JobState>);

/// What finishing a job gives its owner.
pub enum Finished {
    /// The request itself (outputs read in place); give it back with [`Instance::release`].
    Request(InferRequest),
    /// The outputs copied by a harvest.
    Outputs(Outputs),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Job {
    /// Whether the inference is over (never blocks).
    pub fn is_done(&self) -> Result<bool, String> {
        match &mut *lock(&self.0) {
            JobState::Running(request, _) => request.is_done().map_err(|e| e.to_string()),
            _ => Ok(true),
        }
    }
}

struct Pool {
    idle: Vec<InferRequest>,
    /// Jobs started and not yet finished, oldest first (jobs closed meanwhile are skipped).
    running: VecDeque<Arc<Job>>,
}

/// A compiled model and its infer requests.
pub struct Instance {
    /// Declared before the model: requests are dropped first.
    pool: Mutex<Pool>,
    /// Signalled when a request comes back or a job starts (and so can be harvested).
    changed: Condvar,
    /// Kept alive as long as its requests.
    _model: Arc<CompiledModel>,
    /// Number of requests.
    pub size: usize,
    /// Number of model outputs.
    outputs: usize,
    /// What the instance was made for (model, device, hint, pre-processing): elements joining
    /// it by id must match.
    pub config: String,
}

impl Instance {
    pub fn new(
        model: Arc<CompiledModel>,
        size: usize,
        outputs: usize,
        config: String,
    ) -> Result<Self, String> {
        let idle = (0..size)
            .map(|_| model.create_request().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Instance {
            pool: Mutex::new(Pool {
                idle,
                running: VecDeque::new(),
            }),
            changed: Condvar::new(),
            _model: model,
            size,
            outputs,
            config,
        })
    }

    /// A free request if one is idle.
    pub fn try_acquire(&self) -> Option<InferRequest> {
        lock(&self.pool).idle.pop()
    }

    /// A free request: at once if one is idle, else after harvesting the instance's oldest job,
    /// else (all requests being filled by other elements right now) when one comes back or is
    /// started.
    pub fn acquire(&self) -> InferRequest {
        let mut pool = lock(&self.pool);
        loop {
            if let Some(request) = pool.idle.pop() {
                return request;
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

    /// Starts `request` (already filled; its input borrowing `keep`, if any) as a job of the
    /// instance; on failure the request goes back to the pool.
    pub fn start(&self, mut request: InferRequest, keep: Option<Keep>) -> Result<Arc<Job>, String> {
        if let Err(e) = request.start() {
            self.release(request);
            return Err(e.to_string());
        }
        let job = Arc::new(Job(Mutex::new(JobState::Running(request, keep))));
        lock(&self.pool).running.push_back(job.clone());
        // An element waiting in `acquire` can harvest it now: without this, it would wait for
        // a request to come back, which may never happen if this element's next push blocks
        // (a sink prerolling while the waiting element has not yet delivered its first frame).
        self.changed.notify_all();
        Ok(job)
    }

    /// Gives a request back to the pool.
    pub fn release(&self, request: InferRequest) {
        lock(&self.pool).idle.push(request);
        self.changed.notify_one();
    }

    /// Copies a running job's outputs into it and frees its request. The job stays locked
    /// meanwhile, so its owner finishing it at the same time waits and then finds the copy.
    fn harvest(&self, job: &Job) {
        let mut state = lock(&job.0);
        let JobState::Running(mut request, keep) = std::mem::replace(&mut *state, JobState::Closed)
        else {
            return;
        };
        let waited = request.wait();
        drop(keep);
        let outputs = waited.map_err(|e| e.to_string()).and_then(|_| {
            (0..self.outputs)
                .map(|i| {
                    let (shape, data) = request.output_f32(i).map_err(|e| e.to_string())?;
                    Ok((shape, data.to_vec()))
                })
                .collect()
        });
        *state = JobState::Harvested(outputs);
        drop(state);
        self.release(request);
    }

    /// Waits for the owner's job to end: the request (outputs in place, to be released by the
    /// caller) or the outputs a harvest copied.
    pub fn finish(&self, job: &Arc<Job>) -> Result<Finished, String> {
        self.forget(job);
        let state = std::mem::replace(&mut *lock(&job.0), JobState::Closed);
        match state {
            JobState::Running(mut request, keep) => match request.wait().map(|_| drop(keep)) {
                Ok(()) => Ok(Finished::Request(request)),
                Err(e) => {
                    self.release(request);
                    Err(e.to_string())
                }
            },
            JobState::Harvested(outputs) => outputs.map(Finished::Outputs),
            JobState::Closed => Err("the inference was already finished".into()),
        }
    }

    /// Ends a job whose results are not wanted (flush, stop).
    pub fn discard(&self, job: &Arc<Job>) {
        self.forget(job);
        if let JobState::Running(mut request, keep) =
            std::mem::replace(&mut *lock(&job.0), JobState::Closed)
        {
            let _ = request.wait();
            drop(keep);
            self.release(request);
        }
    }

    /// Takes a job its owner is finishing out of the harvest queue.
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

    /// The tiny colour classifier (f32 [1,3,16,16] -> softmax of the channel means) compiled
    /// on the CPU, in an instance of `size` requests.
    fn instance(size: usize) -> Instance {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/tiny/colour_classifier.onnx");
        let core = Core::new().expect("OpenVINO runtime (run make setup)");
        let model = core.read_model(&path).expect("tiny model (run make setup)");
        let compiled = core.compile(&model, "CPU", &[]).expect("compiles");
        Instance::new(Arc::new(compiled), size, 1, "tiny".into()).expect("requests")
    }

    /// Fills the request with one colour: channel `c` at 1.0, the others at 0.
    fn fill(request: &mut InferRequest, c: usize) {
        let bytes = request.input_bytes().expect("input");
        for (i, v) in bytes.chunks_exact_mut(4).enumerate() {
            let value: f32 = if i / 256 == c { 1.0 } else { 0.0 };
            v.copy_from_slice(&value.to_ne_bytes());
        }
    }

    fn top(outputs: &[(Vec<usize>, Vec<f32>)]) -> usize {
        let scores = &outputs[0].1;
        (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .expect("scores")
    }

    fn read(instance: &Instance, finished: Finished) -> Outputs {
        match finished {
            Finished::Outputs(o) => o,
            Finished::Request(request) => {
                let (shape, data) = request.output_f32(0).expect("output");
                let copy = vec![(shape, data.to_vec())];
                instance.release(request);
                copy
            }
        }
    }

    #[test]
    fn a_job_harvested_for_another_stream_keeps_its_own_results() {
        let instance = instance(1);
        // Stream 1 starts a red frame and then stalls, holding the only request.
        let mut request = instance.acquire();
        fill(&mut request, 0);
        let red = instance.start(request, None).expect("starts");
        // Stream 2 needs a request: the red job is harvested rather than waited for.
        let mut request = instance.acquire();
        fill(&mut request, 2);
        let blue = instance.start(request, None).expect("starts");
        let red = read(&instance, instance.finish(&red).expect("red"));
        let blue = read(&instance, instance.finish(&blue).expect("blue"));
        assert_eq!((top(&red), top(&blue)), (0, 2));
        assert_eq!(red[0].0, vec![1, 3]);
        assert_eq!(instance.idle(), 1, "every request is back in the pool");
        assert!(
            instance
                .finish(&Arc::new(Job(Mutex::new(JobState::Closed))))
                .is_err()
        );
    }

    #[test]
    fn discarded_and_finished_jobs_return_their_requests() {
        let instance = instance(2);
        let mut jobs = Vec::new();
        for c in 0..2 {
            let mut request = instance.try_acquire().expect("idle request");
            fill(&mut request, c);
            jobs.push(instance.start(request, None).expect("starts"));
        }
        assert!(instance.try_acquire().is_none());
        for job in &jobs {
            while !job.is_done().expect("polls") {
                std::thread::yield_now();
            }
        }
        instance.discard(&jobs[0]);
        let green = read(&instance, instance.finish(&jobs[1]).expect("green"));
        assert_eq!(top(&green), 1);
        assert_eq!(instance.idle(), 2);
        assert!(
            lock(&instance.pool).running.is_empty(),
            "no job left queued"
        );
    }

    /// Another stream, in a thread, inferring colour `c` (its result is the thread's); checked
    /// to be waiting for a request, none being free.
    fn stream_waiting(instance: &Arc<Instance>, c: usize) -> std::thread::JoinHandle<usize> {
        let other = instance.clone();
        let waiter = std::thread::spawn(move || {
            let mut request = other.acquire();
            fill(&mut request, c);
            let job = other.start(request, None).expect("starts");
            top(&read(&other, other.finish(&job).expect("finishes")))
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "no request was free");
        waiter
    }

    #[test]
    fn a_stream_waits_for_a_request_another_is_filling() {
        let instance = Arc::new(instance(1));
        let taken = instance.acquire();
        let waiter = stream_waiting(&instance, 1);
        instance.release(taken);
        assert_eq!(waiter.join().expect("no panic"), 1);
    }

    #[test]
    fn a_waiting_stream_harvests_the_job_the_other_starts() {
        // Stream 1 is filling the only request when stream 2 asks for one; stream 1 then starts
        // it and stalls (its next push blocks) without ever giving the request back.
        let instance = Arc::new(instance(1));
        let mut taken = instance.acquire();
        let waiter = stream_waiting(&instance, 2);
        fill(&mut taken, 0);
        let red = instance.start(taken, None).expect("starts");
        // Stream 2 goes on by harvesting the red job, and stream 1 finds its results there.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !waiter.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(waiter.is_finished(), "the waiting stream was never woken");
        assert_eq!(waiter.join().expect("no panic"), 2);
        assert_eq!(
            top(&read(&instance, instance.finish(&red).expect("red"))),
            0
        );
    }
}

//! Dynamic batching for one loaded model version. Requests wait in a bounded queue; `instances` worker
//! threads, each owning an engine [`Session`], take turns collecting a batch: the collecting worker takes
//! queued requests up to `batching.max_batch_size` rows, waiting at most `batching.max_delay` after the
//! first request was queued (and only while other requests of the model are in flight, since a lone
//! request gains nothing from waiting), concatenates the inputs, runs the session and splits the outputs
//! back to each requester. A request larger than the batch runs alone; a model that is not batchable
//! ([`ModelSpec::batchable`](crate::spec::ModelSpec::batchable)) runs every request alone.
//!
//! The workers are OS threads: ONNX Runtime's `Run` blocks, and never runs on the async runtime.
//! Dropping the [`Batcher`] stops it: queued requests still run, then the workers exit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::engine::Session;
use crate::error::ServingError;
use crate::tensor::Tensor;

/// How one version batches.
#[derive(Debug, Clone)]
pub struct BatcherOptions {
    /// Names the version in messages and thread names (`iris:v1`).
    pub label: String,
    /// Most rows per engine call; 1: no batching.
    pub max_batch_size: usize,
    /// Longest wait of the first request of a batch for others.
    pub max_delay: Duration,
    /// Most requests waiting; more are RESOURCE_EXHAUSTED.
    pub max_queued_requests: usize,
    /// Rows per engine call.
    pub batch_rows: metrics::Histogram,
}

/// The queue and workers of one loaded version.
#[derive(Debug)]
pub struct Batcher {
    shared: Arc<Shared>,
}

type Reply = oneshot::Sender<Result<Vec<Tensor>, ServingError>>;

struct Job {
    inputs: Vec<Tensor>,
    rows: usize,
    queued_at: Instant,
    reply: Reply,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// A worker is collecting a batch; the others wait for their turn.
    collecting: bool,
    closed: bool,
    /// Workers take no request while held (tests queue requests first to make batches exact).
    held: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Idle workers wait here for a request (or their turn to collect).
    idle: Condvar,
    /// The collecting worker waits here for more requests.
    more: Condvar,
    options: BatcherOptions,
    /// Requests submitted and not yet answered.
    in_flight: AtomicUsize,
    engine_calls: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Shared")
            .field("label", &self.options.label)
            .field("engine_calls", &self.engine_calls)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Batcher {
    /// Starts one worker thread per session.
    pub fn start(sessions: Vec<Session>, options: BatcherOptions) -> Result<Batcher, ServingError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            idle: Condvar::new(),
            more: Condvar::new(),
            options,
            in_flight: AtomicUsize::new(0),
            engine_calls: AtomicU64::new(0),
        });
        let batcher = Batcher {
            shared: Arc::clone(&shared),
        };
        for (index, session) in sessions.into_iter().enumerate() {
            let worker_shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("onnx-{index}-{}", shared.options.label))
                .spawn(move || work(&worker_shared, session))
                .map_err(|err| {
                    ServingError::internal(format!(
                        "cannot start an engine thread for {}: {err}",
                        shared.options.label
                    ))
                })?;
        }
        Ok(batcher)
    }

    /// Queues `inputs` (the spec's inputs in spec order, checked, `rows` rows) and waits for the
    /// outputs (the spec's outputs in spec order, `rows` rows). RESOURCE_EXHAUSTED when the queue is
    /// full.
    pub async fn submit(
        &self,
        inputs: Vec<Tensor>,
        rows: usize,
    ) -> Result<Vec<Tensor>, ServingError> {
        let (reply, answer) = oneshot::channel();
        let collecting = {
            let mut queue = self.shared.lock();
            if queue.closed {
                return Err(ServingError::FailedPrecondition {
                    message: format!(
                        "{} was unloaded; retry to reach the serving version",
                        self.shared.options.label
                    ),
                });
            }
            if queue.jobs.len() >= self.shared.options.max_queued_requests {
                return Err(ServingError::ResourceExhausted {
                    message: format!(
                        "{} already has {} requests waiting (limits.max_queued_requests); retry later, or raise the limit or onnx.instances",
                        self.shared.options.label, self.shared.options.max_queued_requests
                    ),
                });
            }
            self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
            queue.jobs.push_back(Job {
                inputs,
                rows,
                queued_at: Instant::now(),
                reply,
            });
            queue.collecting
        };
        if collecting {
            self.shared.more.notify_one();
        } else {
            self.shared.idle.notify_one();
        }
        answer.await.unwrap_or_else(|_| {
            Err(ServingError::internal(format!(
                "the engine thread of {} stopped without answering",
                self.shared.options.label
            )))
        })
    }

    /// How many times the engine ran (batches), since the start.
    pub fn engine_calls(&self) -> u64 {
        self.shared.engine_calls.load(Ordering::Relaxed)
    }

    /// Requests queued or running now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Holds the queue (`true`): requests wait until released (`false`).
    #[cfg(test)]
    pub(crate) fn hold(&self, held: bool) {
        self.shared.lock().held = held;
        self.shared.idle.notify_all();
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.idle.notify_all();
        self.shared.more.notify_all();
    }
}

/// A worker: collect a batch, run it, answer, until the batcher is dropped and the queue is empty.
fn work(shared: &Shared, mut session: Session) {
    while let Some(batch) = next_batch(shared) {
        run_batch(shared, &mut session, batch);
    }
}

/// Waits for this worker's turn and collects the next batch; `None` when closed and drained.
fn next_batch(shared: &Shared) -> Option<Vec<Job>> {
    let options = &shared.options;
    let mut queue = shared.lock();
    loop {
        if !queue.collecting
            && !queue.held
            && let Some(first) = queue.jobs.pop_front()
        {
            let mut rows = first.rows;
            let deadline = first.queued_at + options.max_delay;
            let mut batch = vec![first];
            if rows < options.max_batch_size {
                queue.collecting = true;
                loop {
                    while let Some(next) = queue.jobs.front() {
                        if rows + next.rows > options.max_batch_size {
                            break;
                        }
                        rows += next.rows;
                        if let Some(job) = queue.jobs.pop_front() {
                            batch.push(job);
                        }
                    }
                    let full = rows >= options.max_batch_size || !queue.jobs.is_empty();
                    // Others in flight are running on other workers: their clients may send more.
                    let others = shared.in_flight.load(Ordering::Relaxed) > batch.len();
                    let now = Instant::now();
                    if full || queue.closed || !others || now >= deadline {
                        break;
                    }
                    queue = shared
                        .more
                        .wait_timeout(queue, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                queue.collecting = false;
                if !queue.jobs.is_empty() {
                    shared.idle.notify_one();
                }
            }
            return Some(batch);
        }
        if queue.closed && queue.jobs.is_empty() {
            return None;
        }
        queue = shared
            .idle
            .wait(queue)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

fn run_batch(shared: &Shared, session: &mut Session, mut batch: Vec<Job>) {
    // Requests whose caller went away (deadline, cancel) are not run.
    batch.retain(|job| {
        let waiting = !job.reply.is_closed();
        if !waiting {
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        waiting
    });
    if batch.is_empty() {
        return;
    }
    let rows: usize = batch.iter().map(|job| job.rows).sum();
    shared.engine_calls.fetch_add(1, Ordering::Relaxed);
    shared.options.batch_rows.record(rows as f64);
    if let [job] = batch.as_mut_slice() {
        let result = session.run(&job.inputs);
        if let Some(job) = batch.pop() {
            answer(shared, job, result);
        }
        return;
    }
    match run_merged(session, &batch) {
        Ok(mut per_job) => {
            for (job, outputs) in batch.into_iter().zip(per_job.drain(..)) {
                answer(shared, job, Ok(outputs));
            }
        }
        Err(err) => {
            for job in batch {
                answer(shared, job, Err(err.clone()));
            }
        }
    }
}

fn answer(shared: &Shared, job: Job, result: Result<Vec<Tensor>, ServingError>) {
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    // The caller may have gone away meanwhile; nothing to do then.
    let _ = job.reply.send(result);
}

/// Concatenates the jobs' inputs, runs once, and splits the outputs back per job.
fn run_merged(session: &mut Session, batch: &[Job]) -> Result<Vec<Vec<Tensor>>, ServingError> {
    let input_count = batch.first().map_or(0, |job| job.inputs.len());
    let mut merged = Vec::with_capacity(input_count);
    let mut parts: Vec<&Tensor> = Vec::with_capacity(batch.len());
    for index in 0..input_count {
        parts.clear();
        for job in batch {
            parts.push(job.inputs.get(index).ok_or_else(|| {
                ServingError::internal("requests of one model with different input counts")
            })?);
        }
        merged.push(Tensor::concat(&parts)?);
    }
    let outputs = session.run(&merged)?;
    let rows: Vec<usize> = batch.iter().map(|job| job.rows).collect();
    let mut per_job: Vec<Vec<Tensor>> = (0..batch.len())
        .map(|_| Vec::with_capacity(outputs.len()))
        .collect();
    for output in &outputs {
        for (job_outputs, part) in per_job.iter_mut().zip(output.split_rows(&rows)?) {
            job_outputs.push(part);
        }
    }
    Ok(per_job)
}

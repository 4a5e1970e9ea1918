//! The runtime layer: components joined by bounded channels of record
//! batches. An output read by several components sends each batch to every
//! reader (a copy of the batch's handles, not of its rows); a full channel
//! blocks the sender, so memory stays bounded and a slow destination slows
//! its source. Rows are counted per path.

use datafusion::arrow::record_batch::RecordBatch;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{Receiver, Sender};

/// Batches a channel holds before its sender waits.
pub const CHANNEL_BATCHES: usize = 4;

/// Rows per batch a source builds.
pub const BATCH_ROWS: usize = 8192;

/// Why a component stopped early.
#[derive(Debug)]
pub enum FlowError {
    /// It failed: the message names the component and says why.
    Failed(String),
    /// A reader stopped (because some other component failed) or the flow
    /// was cancelled: not a cause of its own.
    Stopped,
}

impl FlowError {
    /// A failure of component `comp`.
    pub fn of(comp: &str, msg: impl std::fmt::Display) -> FlowError {
        FlowError::Failed(format!("component \"{comp}\": {msg}"))
    }
}

/// One path: the rows sent along it.
#[derive(Debug)]
pub struct PathStat {
    pub from: String,
    pub to: String,
    pub rows: AtomicU64,
}

/// What every component shares: the stop flag and the first failure, and
/// for a resumable flow the count of batches in flight and the barrier where
/// the source waits while a segment commits.
#[derive(Default)]
pub struct Shared {
    stop: AtomicBool,
    first: Mutex<Option<String>>,
    /// Batches sent and not yet fully handled by their reader: a transform
    /// counts a batch handled once it has sent what it made of it, a table
    /// destination once the batch is written. Exact for the components a
    /// resumable flow may hold (see `crate::resume`).
    inflight: AtomicI64,
    /// The source position of a segment that waits to commit.
    pending: Mutex<Option<u64>>,
    released: Condvar,
    /// Where the source ended (records read, those skipped included).
    end: AtomicU64,
}

impl Shared {
    /// Whether the flow is stopping.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Stops the flow, keeping the first failure's message.
    pub fn fail(&self, msg: Option<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(m) = msg
            && let Ok(mut f) = self.first.lock()
            && f.is_none()
        {
            *f = Some(m);
        }
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.first.lock().ok().and_then(|f| f.clone())
    }

    /// A batch was handled by its reader.
    pub fn handled(&self) {
        self.inflight.fetch_sub(1, Ordering::SeqCst);
    }

    /// The source ends a segment at `position` and waits until it commits
    /// (or the flow stops).
    pub fn segment_end(&self, position: u64) -> Result<(), FlowError> {
        let Ok(mut p) = self.pending.lock() else {
            return Err(FlowError::Stopped);
        };
        *p = Some(position);
        while p.is_some() {
            if self.stopping() {
                return Err(FlowError::Stopped);
            }
            p = match self.released.wait_timeout(p, Duration::from_millis(50)) {
                Ok((g, _)) => g,
                Err(_) => return Err(FlowError::Stopped),
            };
        }
        Ok(())
    }

    /// The position of a segment ready to commit: its source waits at the
    /// barrier and every batch it sent is written.
    pub fn segment_ready(&self) -> Option<u64> {
        let p = *self.pending.lock().ok()?;
        (p.is_some() && self.inflight.load(Ordering::SeqCst) == 0)
            .then_some(p)
            .flatten()
    }

    /// Lets the source go on after its segment committed.
    pub fn release(&self) {
        if let Ok(mut p) = self.pending.lock() {
            *p = None;
        }
        self.released.notify_all();
    }

    /// Notes where the source ended.
    pub fn set_end(&self, position: u64) {
        self.end.store(position, Ordering::SeqCst);
    }

    /// Where the source ended.
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::SeqCst)
    }
}

/// A source's place in its rows, for a resumable flow: the records it skips
/// (committed by an earlier run) and where its segments end. Without
/// `resume` it skips nothing and has no segments.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    /// Records committed before: read and dropped.
    pub skip: u64,
    /// Records a segment holds (`commit_rows`), if the flow is resumable.
    pub every: Option<u64>,
    /// Records read so far, the skipped ones included.
    pub read: u64,
}

impl Cursor {
    /// Counts one record; false if it was committed before (drop it).
    pub fn take(&mut self) -> bool {
        self.read += 1;
        self.read > self.skip
    }

    /// Whether the record just taken ends a segment: the source then sends
    /// what it holds and calls [`Shared::segment_end`] with [`Cursor::read`].
    pub fn segment_full(&self) -> bool {
        self.every
            .is_some_and(|n| self.read > self.skip && (self.read - self.skip).is_multiple_of(n))
    }
}

/// One reader of an output: its channel, and the path's counters.
pub type Reader = (Sender<RecordBatch>, Arc<PathStat>);

/// The readers of one output.
pub type Readers = Vec<Reader>;

/// One output of a component: a sender per reader.
pub struct Port {
    senders: Readers,
}

/// The outputs of a running component.
pub struct Emit {
    ports: Vec<Port>,
    shared: Arc<Shared>,
}

impl Emit {
    /// Outputs with these readers.
    pub fn new(ports: Vec<Readers>, shared: Arc<Shared>) -> Emit {
        Emit {
            ports: ports.into_iter().map(|senders| Port { senders }).collect(),
            shared,
        }
    }

    /// What the components share.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Whether output `out` has any reader.
    pub fn has_readers(&self, out: usize) -> bool {
        self.ports.get(out).is_some_and(|p| !p.senders.is_empty())
    }

    /// Sends a batch to every reader of output `out`, waiting while a
    /// reader's channel is full (from a thread outside the async runtime).
    pub fn send(&self, out: usize, batch: RecordBatch) -> Result<(), FlowError> {
        for (tx, stat) in self.readers(out, &batch)? {
            self.count(stat, &batch);
            if tx.blocking_send(batch.clone()).is_err() {
                return Err(self.dropped());
            }
        }
        Ok(())
    }

    /// [`Emit::send`] from inside the async runtime.
    pub async fn send_async(&self, out: usize, batch: RecordBatch) -> Result<(), FlowError> {
        for (tx, stat) in self.readers(out, &batch)? {
            self.count(stat, &batch);
            if tx.send(batch.clone()).await.is_err() {
                return Err(self.dropped());
            }
        }
        Ok(())
    }

    /// The readers a batch goes to: none for an empty batch or an output
    /// nobody reads; an error once the flow is stopping.
    fn readers(&self, out: usize, batch: &RecordBatch) -> Result<&[Reader], FlowError> {
        if batch.num_rows() == 0 {
            return Ok(&[]);
        }
        if self.shared.stopping() {
            return Err(FlowError::Stopped);
        }
        Ok(self
            .ports
            .get(out)
            .map_or(&[][..], |p| p.senders.as_slice()))
    }

    /// Counts a batch on its path, and as in flight until its reader is done.
    fn count(&self, stat: &PathStat, batch: &RecordBatch) {
        stat.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        self.shared.inflight.fetch_add(1, Ordering::SeqCst);
    }

    /// A reader that went away: the batch counted in flight never arrives.
    fn dropped(&self) -> FlowError {
        self.shared.handled();
        FlowError::Stopped
    }
}

/// A component that maps each batch to batches on its outputs: one batch to
/// one (data conversion, audit, derived columns), or each row to one of
/// several named outputs (a lookup's match and `no_match`, an error output,
/// a conditional split). It runs on a thread of its own.
pub trait Transform: Send {
    /// Handles one batch, sending what it makes through `emit`.
    fn process(&mut self, batch: RecordBatch, emit: &Emit) -> Result<(), FlowError>;
    /// Called once the input has ended (before the outputs close).
    fn finish(&mut self, _emit: &Emit) -> Result<(), FlowError> {
        Ok(())
    }
}

/// Runs a transform over its input until the input ends.
pub fn run_transform(
    t: &mut dyn Transform,
    mut rx: Receiver<RecordBatch>,
    emit: &Emit,
) -> Result<(), FlowError> {
    while let Some(b) = rx.blocking_recv() {
        t.process(b, emit)?;
        emit.shared.handled();
    }
    if emit.shared.stopping() {
        return Err(FlowError::Stopped);
    }
    t.finish(emit)
}

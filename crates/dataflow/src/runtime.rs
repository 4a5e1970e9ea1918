//! The runtime layer: components joined by bounded channels of record
//! batches. An output read by several components sends each batch to every
//! reader (a copy of the batch's handles, not of its rows); a full channel
//! blocks the sender, so memory stays bounded and a slow destination slows
//! its source. Rows are counted per path.

use datafusion::arrow::record_batch::RecordBatch;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// What every component shares: the stop flag and the first failure.
#[derive(Default)]
pub struct Shared {
    stop: AtomicBool,
    first: Mutex<Option<String>>,
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
}

/// The readers of one output: a sender and a path each.
pub type Readers = Vec<(Sender<RecordBatch>, Arc<PathStat>)>;

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

    /// Whether output `out` has any reader.
    pub fn has_readers(&self, out: usize) -> bool {
        self.ports.get(out).is_some_and(|p| !p.senders.is_empty())
    }

    /// Sends a batch to every reader of output `out`, waiting while a
    /// reader's channel is full (from a thread outside the async runtime).
    pub fn send(&self, out: usize, batch: RecordBatch) -> Result<(), FlowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.shared.stopping() {
            return Err(FlowError::Stopped);
        }
        let Some(port) = self.ports.get(out) else {
            return Ok(());
        };
        for (tx, stat) in &port.senders {
            stat.rows
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            tx.blocking_send(batch.clone())
                .map_err(|_| FlowError::Stopped)?;
        }
        Ok(())
    }

    /// [`Emit::send`] from inside the async runtime.
    pub async fn send_async(&self, out: usize, batch: RecordBatch) -> Result<(), FlowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.shared.stopping() {
            return Err(FlowError::Stopped);
        }
        let Some(port) = self.ports.get(out) else {
            return Ok(());
        };
        for (tx, stat) in &port.senders {
            stat.rows
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            tx.send(batch.clone())
                .await
                .map_err(|_| FlowError::Stopped)?;
        }
        Ok(())
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
    }
    if emit.shared.stopping() {
        return Err(FlowError::Stopped);
    }
    t.finish(emit)
}

//! A checkpoint's frames in the store: one row per frame, `(key, seq)`.
//!
//! The rows hold exactly the bytes a file would (the same checksummed
//! frames, the same sealed values), so the journal's reader checks a stored
//! checkpoint as it checks a file. Every write is one transaction that first
//! renews the lease *if the epoch is still this run's and the lease has not
//! expired* — the fence — then writes. A write whose answer was lost (the
//! connection dropped after the commit) is sent again: the row is already
//! there with the same bytes, so it is not written twice.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use checkflow_journal::Storage;

use crate::conn::{CallError, Conn};
use crate::lease::{RENEW_SQL, Shared, holder_of};
use crate::{Store, StoreError};

/// An append: the lease renewed if it is still this run's (the fence),
/// and the frame inserted only then, in one statement.
const APPEND_SQL: &str = "WITH fence AS (UPDATE checkflow_lease \
       SET expires_at = now() + make_interval(secs => $3) \
       WHERE key = $1 AND epoch = $2 AND NOT released AND expires_at > now() RETURNING key) \
     INSERT INTO checkflow_frame (key, seq, bytes) SELECT key, $4, $5 FROM fence \
     ON CONFLICT (key, seq) DO NOTHING";

/// A checkpoint read from the store: its frames as one run of bytes, as a
/// file would hold them, and where each frame starts.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    pub bytes: Vec<u8>,
    /// `(seq, offset of its first byte)` for every frame, in order.
    frames: Vec<(i64, u64)>,
}

/// The frames stored under `key`, or `None` if there are none (no checkpoint).
pub fn read(store: &mut Store, key: &str) -> Result<Option<Stored>, StoreError> {
    let key = key.to_string();
    let rows = store.call("read the checkpoint", move |c| {
        c.query(
            "SELECT seq, bytes FROM checkflow_frame WHERE key = $1 ORDER BY seq",
            &[&key],
        )
    })?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut stored = Stored::default();
    for r in rows {
        let seq: i64 = r.get(0);
        let bytes: &[u8] = r.get(1);
        stored.frames.push((seq, stored.bytes.len() as u64));
        stored.bytes.extend_from_slice(bytes);
    }
    Ok(Some(stored))
}

/// The journal's storage in the store.
pub struct PgFrames {
    conn: Conn,
    lease: Arc<Shared>,
    /// Frames written and not yet committed (`sync` commits them).
    pending: Vec<Arc<Vec<u8>>>,
    frames: Vec<(i64, u64)>,
    size: u64,
}

enum Wrote {
    Done,
    /// Already there from an earlier try of this write (whose answer was
    /// lost): done, but this try's fence may not have passed, so it renews
    /// nothing.
    Found,
    Fenced,
    Differs,
}

impl PgFrames {
    pub(crate) fn create(
        conn: Conn,
        lease: Arc<Shared>,
        header: &[u8],
    ) -> Result<PgFrames, StoreError> {
        let header = Arc::new(header.to_vec());
        let mut frames = PgFrames {
            conn,
            lease,
            pending: Vec::new(),
            frames: Vec::new(),
            size: 0,
        };
        frames.write_fenced(0, header.clone(), true)?;
        frames.frames.push((0, 0));
        frames.size = header.len() as u64;
        Ok(frames)
    }

    pub(crate) fn resume(conn: Conn, lease: Arc<Shared>, stored: &Stored) -> PgFrames {
        PgFrames {
            conn,
            lease,
            pending: Vec::new(),
            frames: stored.frames.clone(),
            size: stored.bytes.len() as u64,
        }
    }

    /// Writes frame `seq` (after removing every frame of the key, for a new
    /// checkpoint) in one transaction, fenced by the lease's epoch.
    pub(crate) fn write_fenced(
        &mut self,
        seq: i64,
        bytes: Arc<Vec<u8>>,
        replace: bool,
    ) -> Result<(), StoreError> {
        let deadline = self.lease.check()?;
        let (key, epoch, secs) = (self.lease.key.clone(), self.lease.epoch, self.lease.secs());
        let sent = crate::lease::boot_now();
        let r = self.conn.retry(deadline, move |c| {
            if !replace {
                // An append is one statement (one round trip, one commit):
                // the fence and the insert together.
                let append = c.prep(APPEND_SQL)?;
                let mut n = c.execute(&append, &[&key, &epoch, &secs, &seq, &bytes.as_slice()])?;
                // The tests' crash point: the commit landed and its answer
                // was lost (the connection dropped right after it), so the
                // same write is sent again, as `retry` sends it.
                if n == 1 && crate::failpoint("store-append-lost-answer") {
                    n = c.execute(&append, &[&key, &epoch, &secs, &seq, &bytes.as_slice()])?;
                }
                if n == 1 {
                    return Ok(Wrote::Done);
                }
                // Fenced, or sent before and its commit landed.
                let row = c.query_one(
                    "SELECT (SELECT bytes FROM checkflow_frame WHERE key = $1 AND seq = $2), \
                       (SELECT epoch FROM checkflow_lease WHERE key = $1)",
                    &[&key, &seq],
                )?;
                let now_epoch: Option<i64> = row.get(1);
                return Ok(match row.get::<_, Option<&[u8]>>(0) {
                    Some(b) if b == bytes.as_slice() => Wrote::Found,
                    _ if now_epoch != Some(epoch) => Wrote::Fenced,
                    Some(_) => Wrote::Differs,
                    None => Wrote::Fenced,
                });
            }
            c.begin()?;
            if c.execute(RENEW_SQL, &[&key, &epoch, &secs])? != 1 {
                return Ok(Wrote::Fenced);
            }
            c.execute("DELETE FROM checkflow_frame WHERE key = $1", &[&key])?;
            c.execute(
                "INSERT INTO checkflow_frame (key, seq, bytes) VALUES ($1, $2, $3)",
                &[&key, &seq, &bytes.as_slice()],
            )?;
            c.commit()?;
            Ok(Wrote::Done)
        });
        self.settle(r, sent, seq)
    }

    fn settle(
        &mut self,
        r: Result<Wrote, CallError>,
        sent: std::time::Duration,
        seq: i64,
    ) -> Result<(), StoreError> {
        match r {
            Ok(Wrote::Done) => {
                self.lease.renewed(sent);
                Ok(())
            }
            Ok(Wrote::Found) => Ok(()),
            Ok(Wrote::Fenced) => {
                let why = self.fenced_why();
                self.lease.lose(why.clone());
                Err(self.lease.lost(why))
            }
            Ok(Wrote::Differs) => Err(StoreError::Conflict {
                key: self.lease.key.clone(),
                seq,
            }),
            Err(e) if e.is_transient() => {
                // Not reachable for as long as this run may hold the lease.
                let why = format!("the store could not be reached within the lease ({e})");
                self.lease.lose(why.clone());
                Err(self.lease.lost(why))
            }
            Err(e) => Err(StoreError::Call {
                action: "write the checkpoint",
                url: self.lease.url.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Why the fence refused a write: who holds the key now.
    fn fenced_why(&mut self) -> String {
        let key = self.lease.key.clone();
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        match self.conn.call(deadline, move |c| holder_of(c, &key)) {
            Ok(Some(h)) if h.epoch != self.lease.epoch => format!("it is now held by {h}"),
            Ok(Some(h)) => format!("it expired before this run renewed it ({h})"),
            _ => "its lease row is gone from the store".to_string(),
        }
    }

    /// Deletes the frames from `from_seq` on, fenced.
    fn delete_from(&mut self, from_seq: i64) -> Result<(), StoreError> {
        let deadline = self.lease.check()?;
        let (key, epoch, secs) = (self.lease.key.clone(), self.lease.epoch, self.lease.secs());
        let sent = crate::lease::boot_now();
        let r = self.conn.retry(deadline, move |c| {
            c.begin()?;
            if c.execute(RENEW_SQL, &[&key, &epoch, &secs])? != 1 {
                return Ok(Wrote::Fenced);
            }
            c.execute(
                "DELETE FROM checkflow_frame WHERE key = $1 AND seq >= $2",
                &[&key, &from_seq],
            )?;
            c.commit()?;
            Ok(Wrote::Done)
        });
        self.settle(r, sent, from_seq)
    }

    /// Removes every frame of the key.
    pub(crate) fn remove_all(mut self) -> Result<(), StoreError> {
        self.delete_from(i64::MIN)
    }

    fn next_seq(&self) -> i64 {
        self.frames.last().map_or(0, |(s, _)| s + 1)
    }
}

fn io_err(e: StoreError) -> io::Error {
    io::Error::other(e.to_string())
}

impl Storage for PgFrames {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // A holder that lost its lease does not even queue a frame.
        self.lease.check().map_err(io_err)?;
        self.pending.push(Arc::new(buf.to_vec()));
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        for bytes in std::mem::take(&mut self.pending) {
            let seq = self.next_seq();
            self.write_fenced(seq, bytes.clone(), false)
                .map_err(io_err)?;
            self.frames.push((seq, self.size));
            self.size += bytes.len() as u64;
        }
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let Some(cut) = self.frames.iter().position(|&(_, at)| at >= len) else {
            return Ok(());
        };
        if self.frames[cut].1 != len {
            return Err(io::Error::other(format!(
                "cannot cut the stored checkpoint at byte {len}: not where a record starts"
            )));
        }
        let seq = self.frames[cut].0;
        self.delete_from(seq).map_err(io_err)?;
        self.frames.truncate(cut);
        self.size = len;
        Ok(())
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn continue_at(&mut self, _len: u64) {
        // Rows hold whole frames: nothing is written ahead of them.
    }

    fn remove(self: Box<Self>, _name: &std::path::Path) -> io::Result<()> {
        (*self).remove_all().map_err(io_err)
    }
}

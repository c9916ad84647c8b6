//! [`SnapshotData`]: the bytes of one Raft snapshot as openraft moves them
//! (its chunked transfer reads the sender's data with `AsyncRead` +
//! `AsyncSeek` and writes the receiver's with `AsyncWrite` + `AsyncSeek`).
//!
//! A shard snapshot is never held in memory. The sender streams passes over
//! a [`storage::SnapshotSource`] (a pinned RocksDB snapshot whose length is
//! known up front); the receiver writes into a file in the data directory,
//! which [`storage::Shard::restore_file`] then validates and applies. Only
//! the meta group's snapshot (the cluster map, small) lives in memory, and
//! writes to it are capped.

use std::io::{self, Cursor, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// Largest in-memory snapshot (the meta group's) a peer may send.
pub const MAX_MEMORY_SNAPSHOT_BYTES: u64 = 64 << 20;

/// One snapshot's bytes: in memory, streamed from a shard, or in a file.
pub struct SnapshotData(Inner);

enum Inner {
    Memory(Cursor<Vec<u8>>),
    Source(Box<Outgoing>),
    File(Incoming),
}

impl SnapshotData {
    /// Bytes held in memory (the meta group's snapshots).
    pub fn from_bytes(b: Vec<u8>) -> Self {
        SnapshotData(Inner::Memory(Cursor::new(b)))
    }

    /// An empty in-memory snapshot to receive into.
    pub fn empty() -> Self {
        Self::from_bytes(Vec::new())
    }

    /// Passes over a shard's snapshot, each read from the start.
    pub fn source(src: storage::SnapshotSource) -> Self {
        SnapshotData(Inner::Source(Box::new(Outgoing {
            len: src.byte_len(),
            src,
            pos: 0,
            rx: None,
            part: Vec::new(),
            at: 0,
        })))
    }

    /// A file to receive a shard snapshot into; removed when dropped unless
    /// a restore moved it away first.
    pub fn file(path: PathBuf, file: std::fs::File) -> Self {
        SnapshotData(Inner::File(Incoming {
            path,
            file: tokio::fs::File::from_std(file),
        }))
    }

    /// The in-memory bytes, if this is an in-memory snapshot.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self.0 {
            Inner::Memory(c) => Some(c.into_inner()),
            _ => None,
        }
    }

    /// The path of a received file; the file is removed when the returned
    /// guard drops (if it is still there).
    pub fn into_file(self) -> Option<ReceivedFile> {
        match self.0 {
            Inner::File(f) => Some(ReceivedFile(f)),
            _ => None,
        }
    }
}

/// A received snapshot file, removed on drop unless moved away.
pub struct ReceivedFile(Incoming);

impl ReceivedFile {
    /// Where the bytes are.
    pub fn path(&self) -> &Path {
        &self.0.path
    }
}

struct Incoming {
    path: PathBuf,
    file: tokio::fs::File,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot remove a snapshot file");
            }
            _ => {}
        }
    }
}

type Part = Result<Vec<u8>, storage::StorageError>;

/// Reading side of a shard snapshot: `pos` bytes of the current pass have
/// been handed out; a seek to 0 (or to the end, as openraft does to learn
/// the length) starts over.
struct Outgoing {
    src: storage::SnapshotSource,
    len: u64,
    pos: u64,
    rx: Option<mpsc::Receiver<Part>>,
    part: Vec<u8>,
    at: usize,
}

impl Outgoing {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(x) => Some(x),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        if target == self.pos {
            return Ok(target);
        }
        if target != 0 && target < self.len {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "a shard snapshot is read from the start: cannot seek to {target} at {}",
                    self.pos
                ),
            ));
        }
        self.rx = None;
        self.part.clear();
        self.at = 0;
        self.pos = target;
        Ok(target)
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        while self.pos < self.len && out.remaining() > 0 {
            if self.at == self.part.len() {
                let rx = self.rx.get_or_insert_with(|| {
                    let (tx, rx) = mpsc::channel::<Part>(2);
                    // Runs on the source's own thread, never in the runtime.
                    self.src
                        .stream_into(Box::new(move |p| tx.blocking_send(p).is_ok()));
                    rx
                });
                match rx.poll_recv(cx) {
                    Poll::Pending if out.filled().is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(Ok(())),
                    Poll::Ready(Some(Ok(p))) => {
                        self.part = p;
                        self.at = 0;
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e))),
                    Poll::Ready(None) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("shard snapshot ended at {} of {} bytes", self.pos, self.len),
                        )))
                    }
                }
            }
            let n = (self.part.len() - self.at).min(out.remaining());
            if self.pos + n as u64 > self.len {
                return Poll::Ready(Err(io::Error::other(format!(
                    "shard snapshot longer than its {} bytes",
                    self.len
                ))));
            }
            out.put_slice(&self.part[self.at..self.at + n]);
            self.at += n;
            self.pos += n as u64;
        }
        Poll::Ready(Ok(()))
    }
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a shard snapshot being sent is read-only",
    )
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Memory(c) => Pin::new(c).poll_read(cx, buf),
            Inner::Source(s) => s.poll_read(cx, buf),
            Inner::File(f) => Pin::new(&mut f.file).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            Inner::Memory(c) => {
                if c.position() + buf.len() as u64 > MAX_MEMORY_SNAPSHOT_BYTES {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("meta snapshot larger than {MAX_MEMORY_SNAPSHOT_BYTES} bytes"),
                    )));
                }
                Pin::new(c).poll_write(cx, buf)
            }
            Inner::Source(_) => Poll::Ready(Err(read_only())),
            Inner::File(f) => Pin::new(&mut f.file).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Memory(c) => Pin::new(c).poll_flush(cx),
            Inner::Source(_) => Poll::Ready(Ok(())),
            Inner::File(f) => Pin::new(&mut f.file).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Memory(c) => Pin::new(c).poll_shutdown(cx),
            Inner::Source(_) => Poll::Ready(Ok(())),
            Inner::File(f) => Pin::new(&mut f.file).poll_shutdown(cx),
        }
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        match &mut self.get_mut().0 {
            Inner::Memory(c) => Pin::new(c).start_seek(to),
            Inner::Source(s) => s.seek(to).map(drop),
            Inner::File(f) => Pin::new(&mut f.file).start_seek(to),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        match &mut self.get_mut().0 {
            Inner::Memory(c) => Pin::new(c).poll_complete(cx),
            Inner::Source(s) => Poll::Ready(Ok(s.pos)),
            Inner::File(f) => Pin::new(&mut f.file).poll_complete(cx),
        }
    }
}

//! Component uploads, received into files rather than memory.
//!
//! An upload's body is written to a file (mode 0600) beside the components as it
//! arrives, counted against the upload limit (413 past it), whatever the client says of
//! its length; at most `max_receiving` uploads are received at once (503 with
//! `Retry-After` past it). A received component is read into memory only to be
//! checked and compiled, and at most `max_loading` are at once (the others wait), so
//! the server's memory stays flat however many clients upload at the same time. A
//! received file becomes the stored component by a rename; a refused one is deleted.

use super::ApiError;
use axum::body::Body;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How much of an oversized body is read and dropped before answering 413, so that a
/// client still sending gets to read the answer instead of a broken pipe.
pub(crate) const DRAIN: usize = 64 << 20;

/// The server's uploads: where they land and how many may be handled at once.
pub struct Uploads {
    dir: PathBuf,
    limit: usize,
    receiving: Arc<Semaphore>,
    max_receiving: usize,
    loading: Arc<Semaphore>,
}

impl Uploads {
    /// Uploads of at most `limit` bytes into `dir` (created when missing).
    pub fn new(dir: PathBuf, limit: usize, max_receiving: usize, max_loading: usize) -> Self {
        Self {
            dir,
            limit,
            receiving: Arc::new(Semaphore::new(max_receiving.max(1))),
            max_receiving: max_receiving.max(1),
            loading: Arc::new(Semaphore::new(max_loading.max(1))),
        }
    }

    /// The largest upload, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Starts receiving an upload, or refuses it (503) when too many are arriving.
    pub async fn begin(&self) -> Result<Receiving, ApiError> {
        let permit = self.receiving.clone().try_acquire_owned().map_err(|_| {
            tracing::warn!(
                "an upload was refused: {} are being received",
                self.max_receiving
            );
            ApiError::Unavailable {
                detail: format!(
                    "{} uploads are being received, the server's limit; send it again later",
                    self.max_receiving
                ),
                retry_after: Duration::from_secs(5),
            }
        })?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(ApiError::internal)?;
        let path = TempFile(
            self.dir
                .join(format!("upload-{}.part", uuid::Uuid::now_v7())),
        );
        let file = private_file(&path.0).await.map_err(ApiError::internal)?;
        Ok(Receiving {
            _permit: permit,
            file,
            path,
            seen: 0,
            limit: self.limit,
        })
    }

    /// Reads a received upload into memory, once it may be (at most `max_loading` at
    /// once); the bytes come with the permit that counts them.
    pub async fn load(&self, received: &Received) -> Result<Loading, ApiError> {
        let permit = self
            .loading
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("the server is shutting down"))?;
        let bytes = tokio::fs::read(&received.path.0)
            .await
            .map_err(ApiError::internal)?;
        Ok(Loading {
            bytes,
            _permit: permit,
        })
    }
}

/// Reads and drops a body refused before it was read (at most the upload limit and the
/// drain past it), so that a client still sending reads the answer instead of a
/// connection closed mid-upload.
pub async fn discard(body: Body, limit: usize) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen > limit.saturating_add(DRAIN) {
                break;
            }
        }
    }
}

/// Creates a file only its owner may read or write.
async fn private_file(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

/// A file deleted when dropped, unless it was moved away first.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An upload being received.
pub struct Receiving {
    _permit: OwnedSemaphorePermit,
    file: tokio::fs::File,
    path: TempFile,
    seen: usize,
    limit: usize,
}

impl Receiving {
    /// Appends a piece of the upload; past the limit the rest is counted, not written.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.seen = self.seen.saturating_add(chunk.len());
        if self.seen <= self.limit {
            self.file
                .write_all(chunk)
                .await
                .map_err(ApiError::internal)?;
        }
        Ok(())
    }

    /// Whether the upload went past the limit.
    pub fn too_large(&self) -> bool {
        self.seen > self.limit
    }

    /// Whether so much past the limit arrived that the rest is not worth reading.
    pub fn drained(&self) -> bool {
        self.seen > self.limit.saturating_add(DRAIN)
    }

    /// Receives a whole request body.
    pub async fn body(mut self, body: Body) -> Result<Received, ApiError> {
        use http_body_util::BodyExt;
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
            if let Ok(data) = frame.into_data() {
                self.write(&data).await?;
                if self.drained() {
                    break;
                }
            }
        }
        self.finish().await
    }

    /// The whole upload, or 413 when it was over the limit.
    pub async fn finish(mut self) -> Result<Received, ApiError> {
        if self.too_large() {
            return Err(ApiError::TooLarge(self.limit));
        }
        self.file.flush().await.map_err(ApiError::internal)?;
        Ok(Received {
            path: self.path,
            size: self.seen,
        })
    }
}

/// A whole upload, in its file.
pub struct Received {
    path: TempFile,
    pub size: usize,
}

impl Received {
    /// Moves the file to `to` (on the same filesystem), unless `to` exists already.
    pub async fn keep_as(self, to: &Path) -> std::io::Result<()> {
        if tokio::fs::try_exists(to).await.unwrap_or(false) {
            return Ok(());
        }
        tokio::fs::rename(&self.path.0, to).await
    }
}

/// The bytes of an upload being checked and compiled.
pub struct Loading {
    pub bytes: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

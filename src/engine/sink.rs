//! Where restored bytes go: stdout or a local file, written by a dedicated
//! thread so that slow readers (gzip, COPY) never stall the downloads in
//! flight, and a bounded channel so that they do throttle them.

use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::transform::Decoder;
use crate::error::{Error, Result};

/// Verified chunks waiting for the writer thread.
const QUEUE: usize = 2;

pub struct Sink {
    tx: Option<mpsc::Sender<Bytes>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    name: String,
    written: u64,
}

impl Sink {
    pub fn new(mut out: Box<dyn Decoder>, name: &str) -> Sink {
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let thread = std::thread::spawn(move || {
            while let Some(chunk) = rx.blocking_recv() {
                out.write(chunk)?;
            }
            out.finish()
        });
        Sink { tx: Some(tx), thread: Some(thread), name: name.to_string(), written: 0 }
    }

    /// Queues verified bytes for writing.
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as u64;
        let sent = match &self.tx {
            Some(tx) => tx.send(data).await.is_ok(),
            None => false,
        };
        if !sent {
            // The writer stopped: its error says why.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| Error::local(format!("writing {}: writer stopped", self.name))));
        }
        self.written += len;
        Ok(())
    }

    /// Waits until everything queued is written and flushed.
    pub async fn finish(mut self) -> Result<u64> {
        let written = self.written;
        tokio::task::block_in_place(|| self.join())?;
        Ok(written)
    }

    fn join(&mut self) -> Result<()> {
        self.tx.take();
        match self.thread.take() {
            Some(t) => match t.join() {
                Ok(Ok(())) => Ok(()),
                // A transform's writer (decryption) fails with its own error.
                Ok(Err(e)) if e.get_ref().is_some_and(|inner| inner.is::<Error>()) => {
                    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
                        Some(Ok(inner)) => Err(*inner),
                        _ => Err(Error::local(format!("writing {}", self.name))),
                    }
                }
                Ok(Err(e)) => Err(Error::io(format!("writing {}", self.name), e)),
                Err(_) => Err(Error::local(format!("writing {}: writer thread panicked", self.name))),
            },
            None => Ok(()),
        }
    }
}

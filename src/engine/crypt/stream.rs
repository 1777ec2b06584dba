//! The readers and the thread between the engine and age: stored units
//! handed to a decrypting thread without a copy ([`Piped`]), and plaintext
//! turned into ciphertext as the upload reads it ([`Encrypting`]).

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;

use super::CHUNK;
use crate::engine::transform::Decoder;
use crate::error::{Error, Result};

/// The units a [`Piped`] decoder was given, as a reader (on its thread).
pub(super) struct ChannelReader {
    pub(super) rx: Receiver<Bytes>,
    pub(super) current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(next) => self.current = next,
                Err(_) => return Ok(0),
            }
        }
        let n = self.current.len().min(buf.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A decoder whose units a thread consumes (decrypts and writes on), as
/// they are: no copy. Its error, if any, is returned by the next write or
/// by `finish`.
pub(super) struct Piped {
    pub(super) tx: Option<SyncSender<Bytes>>,
    pub(super) thread: Option<JoinHandle<Result<()>>>,
}

impl Piped {
    pub(super) fn spawn(work: impl FnOnce(ChannelReader) -> Result<()> + Send + 'static) -> Piped {
        let (tx, rx) = sync_channel::<Bytes>(0);
        Piped::start(tx, move || work(ChannelReader { rx, current: Bytes::new() }))
    }

    pub(super) fn start(tx: SyncSender<Bytes>, work: impl FnOnce() -> Result<()> + Send + 'static) -> Piped {
        Piped { tx: Some(tx), thread: Some(std::thread::spawn(work)) }
    }

    fn join(&mut self) -> io::Result<()> {
        self.tx.take();
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(io::Error::other(e)),
            Some(Err(_)) => Err(io::Error::other(Error::local("the decrypting thread panicked"))),
        }
    }
}

impl Decoder for Piped {
    fn write(&mut self, data: Bytes) -> io::Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(data).is_ok());
        if !sent {
            self.join()?;
            return Err(io::Error::other(Error::local("the decrypting thread stopped")));
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.join()
    }
}

/// The encryptor's output, shared with the reader that hands it out.
#[derive(Clone, Default)]
pub(super) struct Shared(pub(super) Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Plaintext from `source` in, age ciphertext out, 64 KiB at a time.
pub(super) struct Encrypting {
    pub(super) source: Box<dyn Read + Send>,
    pub(super) writer: Option<age::stream::StreamWriter<Shared>>,
    pub(super) buffer: Shared,
    pub(super) pending: Vec<u8>,
    pub(super) at: usize,
    /// The plaintext read buffer, kept from read to read.
    pub(super) plain: Vec<u8>,
}

impl Read for Encrypting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.pending.len() {
            {
                // Swap the encryptor's output in; the drained buffer goes
                // back to it, so that neither is allocated again.
                let mut shared = self.buffer.0.lock().expect("not poisoned");
                if !shared.is_empty() {
                    self.pending.clear();
                    std::mem::swap(&mut *shared, &mut self.pending);
                    self.at = 0;
                    break;
                }
            }
            let Some(writer) = self.writer.as_mut() else { return Ok(0) };
            let plain = &mut self.plain;
            plain.resize(CHUNK as usize, 0);
            let n = match self.source.read(plain) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.writer.take().expect("checked").finish()?;
            } else {
                writer.write_all(&self.plain[..n])?;
            }
        }
        let n = (self.pending.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

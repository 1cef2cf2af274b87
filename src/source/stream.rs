//! A message stream fed by a producer thread.
//!
//! SQLite statements borrow their connection, so an iterator that owns both is awkward; a
//! producer thread that owns the connection and sends batches through a bounded channel
//! keeps memory flat and lets parsing overlap with writing on a second core.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::SourceError;
use crate::records::Message;

const BATCH: usize = 512;
const BATCHES_IN_FLIGHT: usize = 4;

pub type MessageStream = Box<dyn Iterator<Item = Result<Message, SourceError>> + Send>;

/// The producer's handle: `emit` returns `false` once the consumer has gone away.
pub struct Emitter {
    batch: Vec<Message>,
    sender: SyncSender<Result<Vec<Message>, SourceError>>,
    closed: bool,
}

impl Emitter {
    pub fn emit(&mut self, message: Message) -> bool {
        self.batch.push(message);
        if self.batch.len() >= BATCH {
            self.flush();
        }
        !self.closed
    }

    fn flush(&mut self) {
        if self.batch.is_empty() || self.closed {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if self.sender.send(Ok(batch)).is_err() {
            self.closed = true;
        }
    }
}

struct ThreadStream {
    receiver: Option<Receiver<Result<Vec<Message>, SourceError>>>,
    current: std::vec::IntoIter<Message>,
    handle: Option<JoinHandle<()>>,
}

/// Runs `produce` on its own thread and returns its messages as an iterator.
pub fn spawn<F>(name: &str, produce: F) -> MessageStream
where
    F: FnOnce(&mut Emitter) -> Result<(), SourceError> + Send + 'static,
{
    let (sender, receiver) = sync_channel(BATCHES_IN_FLIGHT);
    let error_sender = sender.clone();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut emitter = Emitter {
                batch: Vec::with_capacity(BATCH),
                sender,
                closed: false,
            };
            let outcome = produce(&mut emitter);
            emitter.flush();
            if let Err(error) = outcome {
                // The consumer may be gone already; then nobody needs the error.
                let _ = error_sender.send(Err(error));
            }
        });
    match handle {
        Ok(handle) => Box::new(ThreadStream {
            receiver: Some(receiver),
            current: Vec::new().into_iter(),
            handle: Some(handle),
        }),
        Err(e) => Box::new(std::iter::once(Err(SourceError::Io {
            path: name.into(),
            source: e,
        }))),
    }
}

impl Iterator for ThreadStream {
    type Item = Result<Message, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(message) = self.current.next() {
                return Some(Ok(message));
            }
            let received = self.receiver.as_ref()?.recv();
            match received {
                Ok(Ok(batch)) => self.current = batch.into_iter(),
                Ok(Err(error)) => return Some(Err(error)),
                Err(_) => {
                    // The producer has finished; a panic there must not pass for a clean end.
                    self.receiver = None;
                    let handle = self.handle.take()?;
                    return match handle.join() {
                        Ok(()) => None,
                        Err(_) => Some(Err(SourceError::Corrupt {
                            path: "message reader".into(),
                            detail: "the reader thread stopped unexpectedly".into(),
                        })),
                    };
                }
            }
        }
    }
}

impl Drop for ThreadStream {
    fn drop(&mut self) {
        // Dropping the receiver makes the producer's next send fail, so it stops promptly.
        self.receiver = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

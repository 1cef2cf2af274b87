//! A message stream fed by a producer thread.
//!
//! SQLite statements borrow their connection, so an iterator that owns both is awkward; a
//! producer thread that owns the connection and sends batches through a bounded channel
//! keeps memory flat and lets parsing overlap with writing on a second core.
//!
//! A source whose rows take real work to interpret can split reading from parsing
//! ([`spawn_parsed`]): one thread steps the database and ships raw rows, another turns them
//! into messages, so the database, the parser and the writer each get a share of the cores.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::SourceError;
use crate::records::Message;

const BATCH: usize = 512;
const BATCHES_IN_FLIGHT: usize = 4;

pub type MessageStream = Box<dyn Iterator<Item = Result<Message, SourceError>> + Send>;

pub(crate) type Batch<T> = Result<Vec<T>, SourceError>;

/// The producer's handle: `emit` returns `false` once the consumer has gone away.
pub struct Emitter<T = Message> {
    batch: Vec<T>,
    sender: SyncSender<Batch<T>>,
    closed: bool,
}

impl<T> Emitter<T> {
    pub(crate) fn new(sender: SyncSender<Batch<T>>) -> Emitter<T> {
        Emitter {
            batch: Vec::with_capacity(BATCH),
            sender,
            closed: false,
        }
    }

    pub fn emit(&mut self, item: T) -> bool {
        self.batch.push(item);
        if self.batch.len() >= BATCH {
            self.flush();
        }
        !self.closed
    }

    pub(crate) fn flush(&mut self) {
        if self.batch.is_empty() || self.closed {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if self.sender.send(Ok(batch)).is_err() {
            self.closed = true;
        }
    }
}

/// Runs `produce` on a new thread; its batches, then its error if it fails, arrive on the
/// returned receiver.
fn start<T, F>(name: &str, produce: F) -> std::io::Result<(Receiver<Batch<T>>, JoinHandle<()>)>
where
    T: Send + 'static,
    F: FnOnce(&mut Emitter<T>) -> Result<(), SourceError> + Send + 'static,
{
    let (sender, receiver) = sync_channel(BATCHES_IN_FLIGHT);
    let error_sender = sender.clone();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut emitter = Emitter::new(sender);
            let outcome = produce(&mut emitter);
            emitter.flush();
            if let Err(error) = outcome {
                // The consumer may be gone already; then nobody needs the error.
                let _ = error_sender.send(Err(error));
            }
        })?;
    Ok((receiver, handle))
}

fn thread_failed(name: &str, e: std::io::Error) -> MessageStream {
    Box::new(std::iter::once(Err(SourceError::Io {
        path: name.into(),
        source: e,
    })))
}

/// Runs `produce` on its own thread and returns its messages as an iterator.
pub fn spawn<F>(name: &str, produce: F) -> MessageStream
where
    F: FnOnce(&mut Emitter) -> Result<(), SourceError> + Send + 'static,
{
    match start(name, produce) {
        Ok((receiver, handle)) => Box::new(ThreadStream {
            receiver: Some(receiver),
            current: Vec::new().into_iter(),
            handle: Some(handle),
        }),
        Err(e) => thread_failed(name, e),
    }
}

/// Runs `produce` on one thread and `parse` on another: `produce` emits raw rows, `parse`
/// turns each into a message, in order.
pub fn spawn_parsed<R, F, P>(name: &str, produce: F, mut parse: P) -> MessageStream
where
    R: Send + 'static,
    F: FnOnce(&mut Emitter<R>) -> Result<(), SourceError> + Send + 'static,
    P: FnMut(R) -> Message + Send + 'static,
{
    let reader_name = format!("{name}-read");
    let (raw_receiver, raw_handle) = match start(&reader_name, produce) {
        Ok(started) => started,
        Err(e) => return thread_failed(&reader_name, e),
    };
    let parser_name = format!("{name}-parse");
    let parser = start(&parser_name, move |emit: &mut Emitter<Message>| {
        let rows = ThreadStream {
            receiver: Some(raw_receiver),
            current: Vec::new().into_iter(),
            handle: Some(raw_handle),
        };
        for row in rows {
            if !emit.emit(parse(row?)) {
                break;
            }
        }
        Ok(())
    });
    match parser {
        Ok((receiver, handle)) => Box::new(ThreadStream {
            receiver: Some(receiver),
            current: Vec::new().into_iter(),
            handle: Some(handle),
        }),
        Err(e) => thread_failed(&parser_name, e),
    }
}

struct ThreadStream<T> {
    receiver: Option<Receiver<Batch<T>>>,
    current: std::vec::IntoIter<T>,
    handle: Option<JoinHandle<()>>,
}

impl<T> Iterator for ThreadStream<T> {
    type Item = Result<T, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(Ok(item));
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

impl<T> Drop for ThreadStream<T> {
    fn drop(&mut self) {
        // Dropping the receiver makes the producer's next send fail, so it stops promptly.
        self.receiver = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

//! [`Subject`]: an engine under test, as many nodes see it.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type Connect<E> = dyn Fn() -> Pin<Box<dyn Future<Output = Arc<E>> + Send>> + Send + Sync;

/// An engine under test: it opens handles on one shared engine, each with
/// connections of its own (as separate nodes have), and keeps alive what
/// the engine needs (a private server), dropped after the handles.
pub struct Subject<E: ?Sized> {
    connect: Box<Connect<E>>,
    _keep_alive: Box<dyn Any + Send>,
}

impl<E: ?Sized + Send + Sync + 'static> Subject<E> {
    /// `connect` opens a new handle on the engine; `keep_alive` outlives
    /// every use of the subject.
    pub fn new<F, Fut>(keep_alive: impl Any + Send, connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Arc<E>> + Send + 'static,
    {
        Self { connect: Box::new(move || Box::pin(connect())), _keep_alive: Box::new(keep_alive) }
    }

    /// A new handle on the engine, with its own connections.
    pub async fn connect(&self) -> Arc<E> {
        (self.connect)().await
    }
}

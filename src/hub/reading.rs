//! A switch that stops reading a socket: the `stop_reading` fault. The hub keeps writing to
//! the client but reads nothing more from it, so the client's frames wait in the kernel's
//! buffers and then in its own, its requests are never answered, and the hub's silence timeout
//! (`HubConfig::client_timeout`) finally drops the socket as half-open.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll};

use futures::Stream;

/// Shared between a socket actor (which flips it) and its inbound stream (which obeys it).
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadSwitch(Arc<AtomicBool>);

impl ReadSwitch {
    /// Reads nothing more from the socket, for the rest of its life.
    pub(crate) fn stop(&self) {
        self.0.store(true, Relaxed);
    }

    fn is_stopped(&self) -> bool {
        self.0.load(Relaxed)
    }
}

/// An inbound byte stream that yields nothing once its switch is stopped. It then stays
/// pending without registering a wake-up: nothing but the actor's end needs it again.
pub(crate) struct Switched<S> {
    inner: S,
    switch: ReadSwitch,
}

impl<S> Switched<S> {
    pub(crate) fn new(inner: S, switch: ReadSwitch) -> Switched<S> {
        Switched { inner, switch }
    }
}

impl<S: Stream + Unpin> Stream for Switched<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.switch.is_stopped() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use futures::task::noop_waker;

    #[test]
    fn a_stopped_switch_yields_nothing_more() {
        let switch = ReadSwitch::default();
        let mut stream = Switched::new(futures::stream::iter([1, 2, 3]), switch.clone());
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
        switch.stop();
        assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Pending);
        assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Pending);
    }
}

//! The outbound queue of one socket: frames the hub has stamped for it and the socket actor
//! has not written yet, bounded, with one wake-up per batch.
//!
//! Delivering a frame used to cost one actix envelope (a boxed message through the
//! actor's mailbox) per receiver. Now a delivery appends to this queue and only the frame
//! that finds it idle sends the actor a wake-up (`ToSocket::Drain`); the actor takes every
//! frame queued by then in one step and writes them together, so a burst to one socket
//! costs one envelope and, usually, one write. The bound is checked before a frame is
//! appended, so the queue never holds more than `max_frames` frames or `max_bytes` bytes:
//! the slow-client rule, exact.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::state::lock;

/// Frames waiting for one socket, and whether its actor has been woken for them.
#[derive(Debug)]
pub(crate) struct Pending<F> {
    frames: VecDeque<(F, usize)>,
    bytes: usize,
    /// A wake-up is on its way to the actor and it has not taken the frames yet.
    woken: bool,
}

impl<F> Default for Pending<F> {
    fn default() -> Self {
        Pending {
            frames: VecDeque::new(),
            bytes: 0,
            woken: false,
        }
    }
}

/// The queue is at its bound: the receiver reads too slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// What the caller must do after a frame was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Send the actor a wake-up: the queue was idle.
    Now,
    /// A wake-up is already on its way; it will find this frame too.
    Already,
}

impl<F> Pending<F> {
    /// Appends a frame of `size` bytes unless that would pass `max_frames` or `max_bytes`.
    pub(crate) fn push(
        &mut self,
        frame: F,
        size: usize,
        max_frames: usize,
        max_bytes: usize,
    ) -> Result<Wake, Full> {
        let bytes = self.bytes.checked_add(size).filter(|&b| b <= max_bytes);
        let Some(bytes) = bytes.filter(|_| self.frames.len() < max_frames) else {
            return Err(Full);
        };
        self.frames.push_back((frame, size));
        self.bytes = bytes;
        Ok(if std::mem::replace(&mut self.woken, true) {
            Wake::Already
        } else {
            Wake::Now
        })
    }

    /// The actor's wake-up: moves every queued frame to the back of `into` and marks the
    /// queue idle, so the next frame wakes the actor again. An empty `into` is swapped in,
    /// so the two buffers take turns and neither side allocates per batch.
    pub(crate) fn take(&mut self, into: &mut VecDeque<(F, usize)>) {
        if into.is_empty() {
            std::mem::swap(into, &mut self.frames);
        } else {
            into.append(&mut self.frames);
        }
        self.bytes = 0;
        self.woken = false;
    }

    /// Frames queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }
}

/// [`Pending`] shared by the delivering threads and the socket actor. Its lock is a leaf:
/// nothing else is locked while it is held.
#[derive(Debug)]
pub(crate) struct SocketQueue<F> {
    pending: Mutex<Pending<F>>,
}

impl<F> Default for SocketQueue<F> {
    fn default() -> Self {
        SocketQueue {
            pending: Mutex::new(Pending::default()),
        }
    }
}

impl<F> SocketQueue<F> {
    /// [`Pending::push`] under the lock.
    pub(crate) fn push(
        &self,
        frame: F,
        size: usize,
        max_frames: usize,
        max_bytes: usize,
    ) -> Result<Wake, Full> {
        lock(&self.pending).push(frame, size, max_frames, max_bytes)
    }

    /// [`Pending::take`] under the lock.
    pub(crate) fn take(&self, into: &mut VecDeque<(F, usize)>) {
        lock(&self.pending).take(into);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_frame_that_finds_the_queue_idle_wakes_the_actor() {
        let mut q = Pending::default();
        let mut batch = VecDeque::new();
        // (frame, expected wake) in order; `None` is the actor taking the batch.
        let table = [
            (Some(1), Some(Wake::Now)),
            (Some(2), Some(Wake::Already)),
            (Some(3), Some(Wake::Already)),
            (None, None),
            (Some(4), Some(Wake::Now)),
            (Some(5), Some(Wake::Already)),
        ];
        for (frame, wake) in table {
            match frame {
                Some(f) => assert_eq!(q.push(f, 10, 100, 1_000).ok(), wake, "frame {f}"),
                None => q.take(&mut batch),
            }
        }
        let taken: Vec<u32> = batch.iter().map(|(f, _)| *f).collect();
        assert_eq!(taken, [1, 2, 3]);
        assert_eq!(q.len(), 2);
        batch.clear();
        q.take(&mut batch);
        let taken: Vec<u32> = batch.iter().map(|(f, _)| *f).collect();
        assert_eq!(taken, [4, 5], "order kept across batches");
    }

    #[test]
    fn the_bound_holds_before_the_frame_is_queued() {
        // (max frames, max bytes, frame sizes pushed, how many fit)
        let table: [(usize, usize, &[usize], usize); 5] = [
            (3, 1_000, &[1, 1, 1, 1], 3),
            (10, 100, &[40, 40, 40], 2),
            (10, 100, &[100], 1),
            (10, 100, &[101], 0),
            (10, usize::MAX, &[usize::MAX, 1], 1),
        ];
        for (max_frames, max_bytes, sizes, fit) in table {
            let mut q = Pending::default();
            let accepted = sizes
                .iter()
                .take_while(|&&size| q.push((), size, max_frames, max_bytes).is_ok())
                .count();
            assert_eq!(
                accepted, fit,
                "{max_frames} frames, {max_bytes} bytes, {sizes:?}"
            );
            assert_eq!(q.len(), fit);
        }
    }

    #[test]
    fn taking_frees_the_bound() {
        let mut q = Pending::default();
        let mut batch = VecDeque::new();
        assert!(q.push('a', 60, 10, 100).is_ok());
        assert_eq!(q.push('b', 60, 10, 100), Err(Full));
        q.take(&mut batch);
        assert_eq!(q.push('b', 60, 10, 100), Ok(Wake::Now));
    }
}

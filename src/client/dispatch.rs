//! Event delivery: one mechanism behind three ways in.
//!
//! Every subscriber is a bounded queue: a callback runs on the client's [`CallbackActor`]
//! (an actor message per event, off the socket's path, mailbox bounded), a `Recipient<Event>`
//! is an actix mailbox, a stream is a bounded tokio channel. Delivery never waits:
//!
//! **Policy when a subscriber's queue is full**: the event is dropped for that subscriber
//! only (newest dropped, older queued events keep their order), the drop is counted, and the
//! first event that fits again is followed, as soon as there is room, by one
//! [`Event::SlowConsumer`] carrying the count. Under sustained overload events and notices
//! take turns at the free slots, so a consumer slower than the event rate keeps receiving
//! both. The
//! socket, the other subscribers and the other clients are not slowed down. The exceptions
//! are `disconnected` and `stopped`, rare and the ones a consumer must not miss: they go
//! past a full queue (a stream gets them as soon as it has room).

use std::panic::{AssertUnwindSafe, catch_unwind};

use actix::prelude::*;
use tokio::sync::mpsc;

use super::event::{Event, EventKind};

/// Identifies a subscription, to unsubscribe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(pub(crate) u64);

/// A user callback. Runs on the client's arbiter thread; a panic is caught and reported.
pub type Callback = Box<dyn FnMut(&Event) + Send + 'static>;

enum Target {
    Callbacks,
    Recipient(Recipient<Event>),
    Channel(mpsc::Sender<Event>),
}

struct Subscriber {
    id: SubscriptionId,
    kind: Option<EventKind>,
    target: Target,
    dropped: u64,
    /// The next free slot goes to the drop notice rather than to an event.
    notice_first: bool,
}

impl Subscriber {
    /// Offers an event. When the queue is full the drop is counted here, except for terminal
    /// events, which go past the bound.
    fn take(
        &mut self,
        event: &Event,
        terminal: bool,
        callbacks: Option<&Addr<CallbackActor>>,
    ) -> Offer {
        match offer(&self.target, self.id, callbacks, event.clone()) {
            Offer::Full if terminal => {
                force(&self.target, self.id, callbacks, event.clone());
                Offer::Taken
            }
            Offer::Full => {
                if self.dropped == 0 {
                    tracing::warn!(kind = ?event.kind(), "subscriber queue full: dropping events for it");
                }
                self.dropped += 1;
                Offer::Full
            }
            other => other,
        }
    }

    /// Offers the count of dropped events; when it does not fit, the next free slot is its.
    fn notify(&mut self, callbacks: Option<&Addr<CallbackActor>>) -> Offer {
        let notice = Event::SlowConsumer {
            dropped: self.dropped,
        };
        let result = offer(&self.target, self.id, callbacks, notice);
        if result == Offer::Taken {
            self.dropped = 0;
            self.notice_first = false;
        } else {
            self.notice_first = true;
        }
        result
    }
}

/// Result of offering an event to one queue.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offer {
    Taken,
    Full,
    Gone,
}

/// The subscribers of one client, owned by its actor.
#[derive(Default)]
pub(crate) struct Subscribers {
    list: Vec<Subscriber>,
    next_id: u64,
    callbacks: Option<Addr<CallbackActor>>,
    /// Events dropped for slow subscribers, over the client's life.
    pub dropped_total: u64,
}

impl Subscribers {
    fn add(&mut self, kind: Option<EventKind>, target: Target) -> SubscriptionId {
        self.next_id += 1;
        let id = SubscriptionId(self.next_id);
        self.list.push(Subscriber {
            id,
            kind,
            target,
            dropped: 0,
            notice_first: false,
        });
        id
    }

    /// Adds a callback; the first one starts the client's callback actor on this arbiter.
    pub(crate) fn add_callback(
        &mut self,
        kind: Option<EventKind>,
        callback: Callback,
        capacity: usize,
        panics: Recipient<CallbackPanicked>,
    ) -> SubscriptionId {
        let addr = self
            .callbacks
            .get_or_insert_with(|| {
                CallbackActor {
                    callbacks: Vec::new(),
                    capacity,
                    panics,
                }
                .start()
            })
            .clone();
        let id = self.add(kind, Target::Callbacks);
        // Registration must not be dropped like an event: do_send ignores the capacity.
        addr.do_send(Register { id, kind, callback });
        id
    }

    /// Adds an actix recipient.
    pub(crate) fn add_recipient(
        &mut self,
        kind: Option<EventKind>,
        recipient: Recipient<Event>,
    ) -> SubscriptionId {
        self.add(kind, Target::Recipient(recipient))
    }

    /// Adds a bounded channel and returns its receiving end.
    pub(crate) fn add_channel(
        &mut self,
        kind: Option<EventKind>,
        capacity: usize,
    ) -> (SubscriptionId, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (self.add(kind, Target::Channel(tx)), rx)
    }

    /// Removes a subscription; returns whether it existed.
    pub(crate) fn remove(&mut self, id: SubscriptionId) -> bool {
        let before = self.list.len();
        self.list.retain(|s| s.id != id);
        if let Some(addr) = &self.callbacks {
            addr.do_send(Unregister { id });
        }
        before != self.list.len()
    }

    /// Offers the event to every subscriber of its kind, applying the full-queue policy.
    pub(crate) fn deliver(&mut self, event: &Event) {
        let kind = event.kind();
        let terminal = matches!(kind, EventKind::Stopped | EventKind::Disconnected);
        let callbacks = self.callbacks.clone();
        let mut gone = false;
        for sub in self
            .list
            .iter_mut()
            .filter(|s| s.kind.is_none_or(|k| k == kind))
        {
            // While events are being dropped, the notice and the events take turns at the
            // free slots, so a consumer slower than the event rate gets both.
            if sub.dropped > 0 && sub.notice_first && sub.notify(callbacks.as_ref()) == Offer::Gone
            {
                gone = true;
                continue;
            }
            match sub.take(event, terminal, callbacks.as_ref()) {
                Offer::Taken if sub.dropped > 0 => {
                    sub.notify(callbacks.as_ref());
                }
                Offer::Taken => {}
                Offer::Full => self.dropped_total += 1,
                Offer::Gone => gone = true,
            }
        }
        if gone {
            // A dropped stream or a stopped recipient unsubscribes itself.
            self.list.retain(|s| match &s.target {
                Target::Channel(tx) => !tx.is_closed(),
                Target::Recipient(r) => r.connected(),
                Target::Callbacks => true,
            });
        }
    }
}

fn offer(
    target: &Target,
    id: SubscriptionId,
    callbacks: Option<&Addr<CallbackActor>>,
    event: Event,
) -> Offer {
    match target {
        Target::Channel(tx) => match tx.try_send(event) {
            Ok(()) => Offer::Taken,
            Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        },
        Target::Recipient(r) => match r.try_send(event) {
            Ok(()) => Offer::Taken,
            Err(SendError::Full(_)) => Offer::Full,
            Err(SendError::Closed(_)) => Offer::Gone,
        },
        Target::Callbacks => match callbacks.map(|a| a.try_send(Invoke { id, event })) {
            Some(Ok(())) => Offer::Taken,
            Some(Err(SendError::Full(_))) => Offer::Full,
            _ => Offer::Gone,
        },
    }
}

/// Delivers past a full queue: actix's `do_send` ignores the mailbox bound, and a stream
/// gets the event from a task that waits for room (one such task per terminal event).
fn force(
    target: &Target,
    id: SubscriptionId,
    callbacks: Option<&Addr<CallbackActor>>,
    event: Event,
) {
    match target {
        Target::Channel(tx) => {
            let tx = tx.clone();
            actix::spawn(async move {
                let _ = tx.send(event).await;
            });
        }
        Target::Recipient(r) => r.do_send(event),
        Target::Callbacks => {
            if let Some(addr) = callbacks {
                addr.do_send(Invoke { id, event });
            }
        }
    }
}

/// Reported to the client actor when a callback panicked.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct CallbackPanicked {
    pub kind: EventKind,
    pub message: String,
}

/// Runs the callbacks of one client, one event per message, with a bounded mailbox.
pub(crate) struct CallbackActor {
    callbacks: Vec<(SubscriptionId, Option<EventKind>, Callback)>,
    capacity: usize,
    panics: Recipient<CallbackPanicked>,
}

impl Actor for CallbackActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.capacity.max(1));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Register {
    id: SubscriptionId,
    kind: Option<EventKind>,
    callback: Callback,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Unregister {
    id: SubscriptionId,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Invoke {
    id: SubscriptionId,
    event: Event,
}

impl Handler<Register> for CallbackActor {
    type Result = ();
    fn handle(&mut self, msg: Register, _: &mut Context<Self>) {
        self.callbacks.push((msg.id, msg.kind, msg.callback));
    }
}

impl Handler<Unregister> for CallbackActor {
    type Result = ();
    fn handle(&mut self, msg: Unregister, _: &mut Context<Self>) {
        self.callbacks.retain(|(id, _, _)| *id != msg.id);
    }
}

impl Handler<Invoke> for CallbackActor {
    type Result = ();
    fn handle(&mut self, msg: Invoke, _: &mut Context<Self>) {
        let Some((_, _, callback)) = self.callbacks.iter_mut().find(|(id, _, _)| *id == msg.id)
        else {
            return;
        };
        let kind = msg.event.kind();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| callback(&msg.event))) {
            let message = panic_message(panic.as_ref());
            tracing::error!(?kind, %message, "event callback panicked; the client goes on");
            // A panic while handling a panic report is not reported again: no loop.
            if kind != EventKind::CallbackPanicked {
                self.panics.do_send(CallbackPanicked { kind, message });
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

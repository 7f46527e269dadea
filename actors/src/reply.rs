//! How callers ask an actor: the message carries a oneshot sender for its answer and goes out
//! with `do_send`, which enqueues it at once. So requests from one connection reach an actor in
//! the order they were sent even before anyone awaits an answer (the idempotent producer
//! depends on it), and the caller never waits on a full mailbox.

use actix::dev::ToEnvelope;
use actix::prelude::*;
use tokio::sync::oneshot;

/// Sends the message `make` builds around a reply sender, and returns the receiving end. The
/// receiver fails if the actor drops the message unanswered (it stopped first).
pub(crate) fn send_asking<A, M, T>(
    addr: &Addr<A>,
    make: impl FnOnce(oneshot::Sender<T>) -> M,
) -> oneshot::Receiver<T>
where
    A: Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message<Result = ()> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    addr.do_send(make(tx));
    rx
}

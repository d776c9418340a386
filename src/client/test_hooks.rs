//! Hooks for tests of the layers above, hidden from the docs: they exist to prove that a
//! fleet survives what should never happen.

use actix::prelude::*;

use super::ClientActor;

/// Makes the client actor panic inside a handler, as a bug would: the actor dies on its
/// arbiter (the arbiter and the other actors on it carry on) and its mailbox closes.
/// For tests of supervision only.
#[doc(hidden)]
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct PanicForTest;

impl Handler<PanicForTest> for ClientActor {
    type Result = ();

    fn handle(&mut self, _: PanicForTest, _: &mut Context<Self>) {
        panic!("PanicForTest: a client actor dies on purpose");
    }
}

// A promise is typed by the impl it is about: a hand-written impl cannot
// borrow another type's made promise instead of making its own with
// `unsafe`.
use ouro::{Structural, Trace, Visitor};
use std::sync::Mutex;

struct Locking(Mutex<Option<ouro::sync::Gc<Locking>>>);

impl Trace for Locking {
    fn structural() -> Structural<Self> {
        <u8 as Trace>::structural()
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.0.lock().unwrap().trace(v);
    }
}

fn main() {}

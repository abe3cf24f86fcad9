// The answers a trait object gives for its concrete type (`TraceDyn`) come
// from ouro only: a type of the user's cannot supply its own (it would
// claim to be structural without the `unsafe` promise), nor can a user
// implement `Trace` for an unsized type of its own.
use ouro::{Trace, Visitor};

struct Dst {
    tail: [u8],
}

impl ouro::__private::TraceDyn for Dst {
    fn __ouro_info(&self) -> ouro::__private::DynInfo {
        ouro::__private::DynInfo {
            needs_trace: true,
            structural: true,
            type_name: core::any::type_name::<Dst>,
        }
    }
}

impl Trace for Dst {
    fn trace(&self, _: &mut Visitor<'_>) {
        let _ = &self.tail;
    }
}

fn main() {}

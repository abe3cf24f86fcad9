// `#[trace(finalize)]` needs a `Finalize` impl; the error points at the attribute.
use ouro::Trace;

#[derive(Trace)]
#[trace(finalize)]
struct NoFinalizer {
    #[trace(skip)]
    a: u8,
}

fn main() {}

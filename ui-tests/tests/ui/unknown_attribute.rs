// Every error of one item is reported together.
use ouro::Trace;

#[derive(Trace)]
#[trace(finalise)]
struct Misspelled {
    #[trace(skipped)]
    a: u8,
    #[trace(ignore, skip)]
    b: u8,
    #[trace(serde::skip)]
    c: u8,
}

fn main() {}

use ouro::Trace;

#[derive(Trace)]
#[trace(skip)]
struct SkipOnType {
    a: u8,
}

#[derive(Trace)]
struct TypeAttrsOnField {
    #[trace(finalize)]
    a: u8,
    #[trace(crate = "ouro")]
    b: u8,
    #[trace(needs_trace = false)]
    c: u8,
}

#[derive(Trace)]
enum OnVariant {
    #[trace(skip)]
    A(u8),
    B,
}

fn main() {}

use ouro::Trace;

#[derive(Trace)]
#[trace]
#[trace = "finalize"]
#[trace(finalize = true)]
#[trace(crate = ouro)]
#[trace(crate = "not a path")]
#[trace(needs_trace = "yes")]
#[trace(needs_trace)]
#[trace(crate)]
struct Type {
    a: u8,
}

#[derive(Trace)]
struct Fields {
    #[trace(skip = true)]
    a: u8,
    #[trace(skip(yes))]
    b: u8,
    #[trace(skip, skip)]
    c: u8,
    #[trace(skip,,)]
    d: u8,
}

#[derive(Trace)]
#[trace(finalize, finalize)]
#[trace(crate = "ouro", crate = "ouro")]
#[trace(needs_trace = true)]
#[trace(needs_trace = false)]
struct Duplicates {
    a: u8,
}

fn main() {}

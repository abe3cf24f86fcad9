use ouro::Trace;

#[derive(Trace)]
#[repr(C, packed)]
struct Packed {
    a: u8,
    b: u32,
}

#[derive(Trace)]
#[repr(packed(2))]
struct Packed2 {
    a: u8,
    b: u32,
}

fn main() {}

use ouro::{Trace, Visitor};

struct Plain;

impl Trace for Plain {
    fn needs_trace() -> bool { false }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

struct NotTrace;

#[derive(Trace)]
struct Named {
    fine: Plain,
    file: std::fs::File,
}

#[derive(Trace)]
struct Tuple(Plain, NotTrace);

#[derive(Trace)]
enum Shapes {
    Unit,
    Tuple(NotTrace),
    Named { plain: Plain, socket: std::net::UdpSocket },
}

fn main() {}

// A deep-copied field must implement `DeepCopy`, a shallow one `Clone`.
// (A stand-in for ouro's trait, through `crate = "..."`.)
use ouro::DeepCopy;

mod fake {
    pub struct DeepCopier<'a>(pub &'a mut ());

    pub trait DeepCopy {
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self;
    }

    impl DeepCopy for u32 {
        fn deep_copy(&self, _: &mut DeepCopier<'_>) -> Self {
            *self
        }
    }
}

#[derive(DeepCopy)]
#[deep_copy(crate = "crate::fake")]
struct Config {
    retries: u32,
    log: std::fs::File,
    #[deep_copy(shallow)]
    socket: std::net::UdpSocket,
}

#[derive(DeepCopy)]
#[deep_copy(crate = "crate::fake")]
enum Source {
    File(std::fs::File),
}

fn main() {}

//! `cargo xtask`: ouro's project automation (std only).
fn main() {
    eprintln!("xtask: not implemented yet");
    std::process::exit(2);
}

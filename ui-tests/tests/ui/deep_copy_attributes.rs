use ouro::DeepCopy;

#[derive(DeepCopy)]
#[deep_copy(shallow)]
#[deep_copy(finalize)]
#[deep_copy(crate = 1)]
struct OnType {
    #[deep_copy(skip)]
    a: u8,
    #[deep_copy(shallow = true)]
    b: u8,
    #[deep_copy(crate = "ouro")]
    c: u8,
    #[deep_copy]
    d: u8,
}

#[derive(DeepCopy)]
enum OnVariant {
    #[deep_copy(shallow)]
    A(u8),
}

#[derive(DeepCopy)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}

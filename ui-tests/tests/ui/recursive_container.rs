// A field type that holds the derived type inside something named like a
// std container: the derive asks std's container and checks that the field
// type is that very type, so neither another type of that name nor an alias
// that changes the argument can stand in for it.
use ouro::Trace;

mod own_box {
    use super::*;

    #[derive(Trace)]
    pub struct Box<T>(std::boxed::Box<T>);

    #[derive(Trace)]
    struct List {
        next: Option<Box<List>>,
    }

    // Written with a path, it is not taken for std's: `Tree` is then only
    // not structural.
    #[derive(Trace)]
    struct Tree {
        kids: Vec<self::Box<Tree>>,
    }
}

mod alias {
    use super::*;

    pub trait Pick {
        type Out;
    }

    impl Pick for Node {
        type Out = u8;
    }

    type Vec<T> = std::vec::Vec<<T as Pick>::Out>;

    #[derive(Trace)]
    struct Node {
        kids: Vec<Node>,
    }
}

fn main() {}

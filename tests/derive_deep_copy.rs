//! `#[derive(DeepCopy)]` against a stand-in for ouro's `DeepCopy` trait
//! (through `#[deep_copy(crate = "...")]`): which shapes compile, which
//! fields are deep-copied and which are cloned.
//!
//! The behaviour with ouro's own `DeepCopier` (shared nodes and cycles) is
//! tested where that type lives.

use ouro::DeepCopy;
use std::rc::Rc;

/// The shape of ouro's trait, with a copier that counts deep copies.
mod fake {
    pub(crate) struct DeepCopier<'a> {
        pub(crate) copies: &'a mut usize,
    }

    pub(crate) trait DeepCopy {
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self;
    }

    impl DeepCopy for u32 {
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
            *copier.copies += 1;
            *self
        }
    }

    impl DeepCopy for String {
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
            *copier.copies += 1;
            self.clone()
        }
    }

    impl<T: DeepCopy> DeepCopy for Vec<T> {
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
            self.iter().map(|x| x.deep_copy(copier)).collect()
        }
    }

    impl<T: DeepCopy> DeepCopy for Box<T> {
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
            Box::new((**self).deep_copy(copier))
        }
    }

    impl<T: DeepCopy> DeepCopy for Option<T> {
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
            self.as_ref().map(|x| x.deep_copy(copier))
        }
    }
}

use fake::DeepCopier;

fn copy<T: fake::DeepCopy>(value: &T) -> (T, usize) {
    let mut copies = 0;
    let copy = value.deep_copy(&mut DeepCopier {
        copies: &mut copies,
    });
    (copy, copies)
}

#[derive(DeepCopy, Debug, PartialEq)]
#[deep_copy(crate = "crate::fake")]
struct Unit;

#[derive(DeepCopy, Debug, PartialEq)]
#[deep_copy(crate = "crate::fake")]
struct Named {
    id: u32,
    name: String,
    #[deep_copy(shallow)]
    shared: Rc<str>,
}

#[derive(DeepCopy, Debug, PartialEq)]
#[deep_copy(crate = "crate::fake")]
struct Tuple(u32, #[deep_copy(shallow)] Rc<Vec<u8>>);

#[derive(DeepCopy, Debug, PartialEq)]
#[deep_copy(crate = "crate::fake")]
enum Tree<T>
where
    T: Clone,
{
    Leaf,
    Node(T, Vec<Tree<T>>),
    Labelled {
        label: String,
        child: Option<Box<Tree<T>>>,
    },
}

#[test]
fn structs_copy_field_by_field() {
    assert_eq!(copy(&Unit), (Unit, 0));

    let named = Named {
        id: 1,
        name: "n".into(),
        shared: Rc::from("s"),
    };
    let (copied, copies) = copy(&named);
    assert_eq!(copied, named);
    assert_eq!(
        copies, 2,
        "`id` and `name` are deep-copied, `shared` is cloned"
    );
    assert!(Rc::ptr_eq(&copied.shared, &named.shared));

    let tuple = Tuple(7, Rc::new(vec![1, 2]));
    let (copied, copies) = copy(&tuple);
    assert_eq!((copied.0, copies), (7, 1));
    assert!(Rc::ptr_eq(&copied.1, &tuple.1));
    assert_eq!(Rc::strong_count(&tuple.1), 2);
}

#[test]
fn generic_enum_copies_every_variant() {
    let tree = Tree::Labelled {
        label: "root".into(),
        child: Some(Box::new(Tree::Node(
            1u32,
            vec![Tree::Leaf, Tree::Node(2, vec![])],
        ))),
    };
    let (copied, copies) = copy(&tree);
    assert_eq!(copied, tree);
    assert_eq!(copies, 3, "the label and the two numbers");
}

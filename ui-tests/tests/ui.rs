//! Compile-fail tests pinning every error message of the derives.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p
//! ouro-ui-tests --test ui`; never edit them by hand.
#![cfg(not(any(loom, miri)))]

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}

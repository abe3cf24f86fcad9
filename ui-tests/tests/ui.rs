//! Compile-fail tests pinning every error message of the derives.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p
//! ouro-ui-tests --test ui`; never edit them by hand. Not built for loom,
//! Miri or the sanitizer build (`ouro_sanitize`): compile errors have
//! nothing to check at run time, and the `.stderr` files are stable rustc's
//! wording, which nightly may change.
#![cfg(not(any(loom, miri, ouro_sanitize)))]

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}

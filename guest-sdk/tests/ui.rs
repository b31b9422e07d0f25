//! The macros' error messages (compile-fail cases under `ui/`) and a compile-pass case.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/pass/*.rs");
}

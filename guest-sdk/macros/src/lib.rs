//! The `#[flow]` and `#[task]` attribute macros of `weir-sdk`.
//!
//! # Layout
//!
//! - `options`: parsing and checking the macro options (`retries = 3`, ...).
//! - `signature`: checking the function and reading its parameters and return type.
//! - `expand`: the generated code, all through `::weir_sdk::__private` paths.
//!
//! Misuse is reported as a `compile_error!` spanned at the offending token; the item is then
//! dropped so that only the macro's error shows.

use proc_macro::TokenStream;

mod expand;
mod options;
mod signature;

/// The kind of function a macro marks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Flow,
    Task,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Flow => "#[flow]",
            Kind::Task => "#[task]",
        }
    }
}

/// Marks a function as a Weir flow; see `weir_sdk::flow`.
#[proc_macro_attribute]
pub fn flow(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Flow, attr.into(), item.into()).into()
}

/// Marks a function as a Weir task; see `weir_sdk::task`.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Task, attr.into(), item.into()).into()
}

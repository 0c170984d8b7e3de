//! Procedural macros of the [`csp`](https://docs.rs/csp) crate. Use them through `csp`:
//! the generated code names `::csp`.
//!
//! - [`macro@process`]: turns a function into a process constructor.
//! - [`select!`]: a choice among input, output, timeout and skip guards.
//! - [`derive@ChannelEnds`]: lets poison propagation find the ends inside your own types.

mod derive_ends;
mod process;
mod select;

use proc_macro::TokenStream;

/// Turns a function into a process constructor.
///
/// `#[process] fn name(args) -> R { body }` becomes `fn name(args) -> csp::Process<R>`:
/// calling it only captures the arguments; the body runs when the process is composed and
/// run. The process is named after its module path and function name.
///
/// A process whose body returns an error meaning "poisoned channel" poisons every channel end
/// among its arguments (also inside `Vec`s, arrays, tuples, `Option`s and maps). Options:
///
/// - `#[process(propagate = false)]`: do not pass poison on (a panic still poisons).
/// - `#[process(placeable)]`: check at compile time that the arguments and the result can
///   cross into another OS process (serde `Serialize` and `Deserialize`), instead of when
///   `.os()` is called.
/// - `#[process(name = "stage")]`: another name for errors and thread names.
///
/// See the `csp` crate documentation for examples.
#[proc_macro_attribute]
pub fn process(args: TokenStream, item: TokenStream) -> TokenStream {
    process::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// A choice among guards; evaluates to `Result<T, csp::SelectError>` where `T` is the type of
/// the arms' bodies.
///
/// ```text
/// select! {
///     [ALTERNATION;]                     // optional: a `&mut csp::Alternation` (policy, fairness)
///     PATTERN = read(READER) [, if COND] => BODY,
///     write(WRITER, VALUE) [, if COND] => BODY,
///     timeout(DURATION) [, if COND] => BODY,
///     skip [, if COND] => BODY,
/// }
/// ```
///
/// Without an alternation, the choice has priority order. See the `csp` crate documentation.
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into(), false)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// [`select!`] for a lightweight process (`#[process] async fn`): the same guards and arms,
/// but the choice is awaited, not blocked on. Use it inside `async` code only.
#[proc_macro]
pub fn select_async(input: TokenStream) -> TokenStream {
    select::expand(input.into(), true)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes `main` ready for placement: inserts `csp::init();` as its first statement, so that
/// a child OS process started from this executable runs its job instead of `main`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    if !args.is_empty() {
        return syn::Error::new_spanned(args, "#[csp::main] takes no arguments")
            .into_compile_error()
            .into();
    }
    let mut function = syn::parse_macro_input!(item as syn::ItemFn);
    function
        .block
        .stmts
        .insert(0, syn::parse_quote!(::csp::init();));
    quote::quote!(#function).into()
}

/// Implements `csp::ChannelEnds` for a struct or enum by visiting every field.
#[proc_macro_derive(ChannelEnds)]
pub fn derive_channel_ends(input: TokenStream) -> TokenStream {
    derive_ends::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

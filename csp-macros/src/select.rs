//! `select!`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Pat, Token, parenthesized};

enum GuardSpec {
    Read { pattern: Pat, reader: Expr },
    Write { writer: Expr, value: Expr },
    Timeout { after: Expr },
    Skip,
}

struct Arm {
    guard: GuardSpec,
    condition: Option<Expr>,
    body: Expr,
    span: Span,
}

struct Select {
    alternation: Option<Expr>,
    arms: Vec<Arm>,
}

fn is_guard_keyword(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    match fork.parse::<Ident>() {
        Ok(ident) if ident == "skip" => fork.peek(Token![=>]) || fork.peek(Token![,]),
        Ok(ident) if ident == "read" || ident == "write" || ident == "timeout" => {
            fork.peek(syn::token::Paren)
        }
        _ => false,
    }
}

fn parse_call(input: ParseStream<'_>) -> syn::Result<(Ident, Vec<Expr>)> {
    let keyword: Ident = input.parse()?;
    if keyword == "skip" {
        return Ok((keyword, Vec::new()));
    }
    let content;
    parenthesized!(content in input);
    let arguments = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
    Ok((keyword, arguments.into_iter().collect()))
}

impl Parse for Arm {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let span = input.span();
        let pattern = if is_guard_keyword(input) {
            None
        } else {
            let pattern = Pat::parse_single(input)?;
            input.parse::<Token![=]>()?;
            Some(pattern)
        };
        let (keyword, mut arguments) = parse_call(input)?;
        let wrong =
            |expected: &str| syn::Error::new(keyword.span(), format!("expected {expected}"));
        let guard = match (keyword.to_string().as_str(), arguments.len(), pattern) {
            ("read", 1, pattern) => GuardSpec::Read {
                pattern: pattern.unwrap_or_else(|| syn::parse_quote!(_)),
                reader: arguments.remove(0),
            },
            ("read", _, _) => return Err(wrong("`read(reader)`")),
            ("write", 2, None) => {
                let value = arguments.remove(1);
                GuardSpec::Write {
                    writer: arguments.remove(0),
                    value,
                }
            }
            ("timeout", 1, None) => GuardSpec::Timeout {
                after: arguments.remove(0),
            },
            ("skip", 0, None) => GuardSpec::Skip,
            ("write" | "timeout" | "skip", _, Some(_)) => {
                return Err(wrong("a pattern only before `read(...)`"));
            }
            ("write", _, _) => return Err(wrong("`write(writer, value)`")),
            ("timeout", _, _) => return Err(wrong("`timeout(duration)`")),
            _ => {
                return Err(wrong(
                    "a guard: `read(reader)`, `write(writer, value)`, `timeout(duration)` or `skip`",
                ));
            }
        };
        let condition = if input.peek(Token![,]) && input.peek2(Token![if]) {
            input.parse::<Token![,]>()?;
            input.parse::<Token![if]>()?;
            Some(Expr::parse_without_eager_brace(input)?)
        } else {
            None
        };
        input.parse::<Token![=>]>()?;
        let body: Expr = input.parse()?;
        let is_block = matches!(body, Expr::Block(_));
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        } else if !input.is_empty() && !is_block {
            return Err(input.error("expected `,` after the arm"));
        }
        Ok(Arm {
            guard,
            condition,
            body,
            span,
        })
    }
}

impl Parse for Select {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let fork = input.fork();
        let alternation =
            if !is_guard_keyword(&fork) && fork.parse::<Expr>().is_ok() && fork.peek(Token![;]) {
                let alternation = input.parse::<Expr>()?;
                input.parse::<Token![;]>()?;
                Some(alternation)
            } else {
                None
            };
        let mut arms = Vec::new();
        while !input.is_empty() {
            arms.push(input.parse()?);
        }
        if arms.is_empty() {
            return Err(input.error("select! needs at least one guard"));
        }
        Ok(Select { alternation, arms })
    }
}

pub(crate) fn expand(input: TokenStream, asynchronous: bool) -> syn::Result<TokenStream> {
    let select: Select = syn::parse2(input)?;
    let alternation = match &select.alternation {
        Some(expression) => quote!(let __csp_alternation: &mut ::csp::Alternation = #expression;),
        None => quote! {
            let mut __csp_priority = ::csp::Alternation::priority();
            let __csp_alternation = &mut __csp_priority;
        },
    };
    let mut guards = Vec::new();
    let mut names = Vec::new();
    let mut arms = Vec::new();
    for (index, arm) in select.arms.iter().enumerate() {
        let name = format_ident!("__csp_guard_{}", index);
        let condition = arm
            .condition
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(true));
        let span = arm.span;
        let body = &arm.body;
        let construct = match &arm.guard {
            GuardSpec::Read { reader, .. } => quote_spanned! {reader.span()=>
                ::csp::InputGuard::new(::csp::__private::EndRef::end_ref(&(#reader)))
            },
            GuardSpec::Write { writer, value } => quote_spanned! {writer.span()=>
                ::csp::OutputGuard::new(::csp::__private::EndRef::end_ref(&(#writer)), #value)
            },
            GuardSpec::Timeout { after } => quote_spanned! {after.span()=>
                ::csp::TimeoutGuard::new(#after)
            },
            GuardSpec::Skip => quote_spanned!(span=> ::csp::SkipGuard::new()),
        };
        guards.push(quote!(let mut #name = #construct.when(#condition);));
        let run = match &arm.guard {
            GuardSpec::Read { pattern, .. } => quote! {
                let #pattern = #name.take().expect("a chosen input guard holds the value read");
                #body
            },
            _ => quote!(#body),
        };
        arms.push(
            quote!(::core::result::Result::Ok(#index) => ::core::result::Result::Ok({ #run }),),
        );
        names.push(name);
    }
    let choose = if asynchronous {
        quote! {
            let __csp_chosen = __csp_alternation.select_async(&mut [
                #(&mut #names as &mut (dyn ::csp::Guard + ::core::marker::Send)),*
            ]).await;
        }
    } else {
        quote! {
            let __csp_chosen = __csp_alternation.select(&mut [
                #(&mut #names as &mut dyn ::csp::Guard),*
            ]);
        }
    };
    Ok(quote! {{
        #alternation
        #(#guards)*
        #choose
        #[allow(unreachable_code, clippy::match_single_binding)]
        match __csp_chosen {
            #(#arms)*
            ::core::result::Result::Ok(_) => ::core::unreachable!("select! chose a guard it does not have"),
            ::core::result::Result::Err(__csp_error) => ::core::result::Result::Err(__csp_error),
        }
    }})
}

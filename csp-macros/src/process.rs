//! `#[process]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Lit, Meta, ReturnType, Token};

struct Options {
    propagate: bool,
    name: Option<String>,
    placeable: bool,
}

fn parse_options(args: TokenStream) -> syn::Result<Options> {
    let mut options = Options {
        propagate: true,
        name: None,
        placeable: false,
    };
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    for meta in metas {
        if let Meta::Path(path) = &meta {
            if path.is_ident("placeable") {
                options.placeable = true;
                continue;
            }
        }
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new(
                meta.span(),
                "expected `placeable`, `propagate = false` or `name = \"...\"`",
            ));
        };
        let literal = match &pair.value {
            Expr::Lit(literal) => &literal.lit,
            other => return Err(syn::Error::new(other.span(), "expected a literal")),
        };
        match (
            pair.path.get_ident().map(ToString::to_string).as_deref(),
            literal,
        ) {
            (Some("propagate"), Lit::Bool(value)) => options.propagate = value.value,
            (Some("name"), Lit::Str(value)) => options.name = Some(value.value()),
            _ => {
                return Err(syn::Error::new(
                    pair.span(),
                    "expected `propagate = true|false` or `name = \"...\"`",
                ));
            }
        }
    }
    Ok(options)
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options = parse_options(args)?;
    let function: ItemFn = syn::parse2(item)?;
    let signature = &function.sig;
    let lightweight = signature.asyncness.is_some();
    if let Some(receiver) = signature.receiver() {
        return Err(syn::Error::new(
            receiver.span(),
            "#[process] goes on a free function, not a method",
        ));
    }

    let mut parameters = Vec::new();
    let mut arguments = Vec::new();
    let mut types = Vec::new();
    let mut bindings = Vec::new();
    for (index, input) in signature.inputs.iter().enumerate() {
        let FnArg::Typed(typed) = input else {
            unreachable!("receivers are rejected above");
        };
        if let syn::Type::ImplTrait(impl_trait) = &*typed.ty {
            return Err(syn::Error::new(
                impl_trait.span(),
                "#[process] needs named argument types: use a generic parameter instead of `impl Trait`",
            ));
        }
        let argument = format_ident!("__csp_argument_{}", index);
        let (attrs, pattern, ty) = (&typed.attrs, &typed.pat, &typed.ty);
        parameters.push(quote!(#(#attrs)* #argument: #ty));
        bindings.push(quote!(let #pattern = #argument;));
        arguments.push(argument);
        types.push(ty.clone());
    }
    let probes = quote!(#((&::csp::__private::Probe(&#arguments)).probe_ends(&mut __csp_ends);)*);

    let result = match &signature.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let ident = &signature.ident;
    let name = match &options.name {
        Some(name) => quote!(#name),
        None => {
            let ident_string = ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident_string))
        }
    };
    let propagate = options.propagate;
    let attrs = &function.attrs;
    let visibility = &function.vis;
    let generics = &signature.generics;
    let where_clause = &generics.where_clause;
    let body = &function.block;
    let constness = &signature.constness;
    let unsafety = &signature.safety;
    let is_generic = !generics.params.is_empty();
    let fingerprint = quote! {
        ::csp::__private::fingerprint(::core::concat!(
            ::core::stringify!((#(#types,)*)), " -> ", ::core::stringify!(#result)
        ))
    };
    if options.placeable && is_generic {
        return Err(syn::Error::new(
            generics.span(),
            "#[process(placeable)] needs a non-generic function: only those are registered",
        ));
    }
    // Placeable: check at compile time that arguments and result can cross OS processes.
    let placeable_check = if options.placeable {
        quote! {
            const _: fn() = || {
                fn placeable<T: ::csp::__private::serde::Serialize + ::csp::__private::serde::de::DeserializeOwned>() {}
                #(placeable::<#types>();)*
                placeable::<#result>();
            };
        }
    } else {
        quote!()
    };
    let fingerprint_option = if is_generic {
        quote!(::core::option::Option::None)
    } else {
        quote!(::core::option::Option::Some(#fingerprint))
    };
    // Only non-generic processes can be found again by name in a child OS process.
    let registration = if is_generic {
        quote!()
    } else {
        quote! {
            ::csp::__private::inventory::submit! {
                ::csp::__private::Registration {
                    name: #name,
                    fingerprint: #fingerprint,
                    run: |__csp_bytes| {
                        #[allow(unused_imports)]
                        use ::csp::__private::{DecodeNone as _, DecodeSerde as _};
                        (&::csp::__private::Decode::<(#(#types,)*), #result>(::core::marker::PhantomData))
                            .run_encoded(__csp_bytes, |(#(#arguments,)*)| #ident(#(#arguments),*))
                    },
                }
            }
        }
    };

    let ending_imports = quote! {
        #[allow(unused_imports)]
        use ::csp::__private::{
            ClassifyOther as _, ClassifyResult as _, ProbeEnds as _, ProbeNoEnds as _,
        };
    };
    // The body, then its ending passed on. Arguments are bound first and the guard after
    // them: the guard is dropped first, so poison is passed on before dropping the ends
    // could retire them.
    let construct = if lightweight {
        quote! {
            ::csp::Process::__from_macro_async(
                #name,
                #fingerprint_option,
                __csp_ends,
                #propagate,
                (#(#arguments,)*),
                |(#(#arguments,)*): (#(#types,)*)| -> ::csp::__private::BoxFuture<'static, #result> {
                    ::std::boxed::Box::pin(async move {
                        #ending_imports
                        let mut __csp_ends = ::csp::EndSet::new();
                        #probes
                        #(#bindings)*
                        let __csp_guard = ::csp::__private::EndingGuard::new(__csp_ends, #propagate);
                        // Not `move`: the body borrows the arguments, which are dropped after the guard.
                        let __csp_result: #result = async {
                            let __csp_returning = __csp_guard.returning();
                            #body
                        }
                        .await;
                        __csp_guard.finish((&::csp::__private::Classify(&__csp_result)).ending());
                        __csp_result
                    })
                },
                |__csp_arguments| (&::csp::__private::Encode(__csp_arguments)).encode(),
                |__csp_result| (&::csp::__private::Classify(__csp_result)).ending(),
            )
        }
    } else {
        quote! {
            ::csp::Process::__from_macro(
                #name,
                #fingerprint_option,
                __csp_ends,
                #propagate,
                (#(#arguments,)*),
                |(#(#arguments,)*): (#(#types,)*)| -> #result {
                    #ending_imports
                    let mut __csp_ends = ::csp::EndSet::new();
                    #probes
                    #(#bindings)*
                    let __csp_guard = ::csp::__private::EndingGuard::new(__csp_ends, #propagate);
                    #[allow(clippy::redundant_closure_call)]
                    let __csp_result: #result = (|| -> #result {
                        let __csp_returning = __csp_guard.returning();
                        #body
                    })();
                    __csp_guard.finish((&::csp::__private::Classify(&__csp_result)).ending());
                    __csp_result
                },
                |__csp_arguments| (&::csp::__private::Encode(__csp_arguments)).encode(),
                |__csp_result| (&::csp::__private::Classify(__csp_result)).ending(),
            )
        }
    };

    Ok(quote! {
        #(#attrs)*
        #[must_use = "a process does nothing until it is run or composed"]
        #visibility #constness #unsafety fn #ident #generics (#(#parameters),*)
            -> ::csp::Process<#result> #where_clause
        {
            #[allow(unused_imports)]
            use ::csp::__private::{
                ClassifyOther as _, ClassifyResult as _, EncodeNone as _, EncodeSerde as _,
                ProbeEnds as _, ProbeNoEnds as _,
            };
            let mut __csp_ends = ::csp::EndSet::new();
            #probes
            #construct
        }

        #registration
        #placeable_check
    })
}

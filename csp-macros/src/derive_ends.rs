//! `#[derive(ChannelEnds)]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields};

fn bind_fields(fields: &Fields) -> (TokenStream, Vec<syn::Ident>) {
    match fields {
        Fields::Named(named) => {
            let names: Vec<_> = named
                .named
                .iter()
                .filter_map(|field| field.ident.clone())
                .collect();
            (quote!({ #(#names),* }), names)
        }
        Fields::Unnamed(unnamed) => {
            let names: Vec<_> = (0..unnamed.unnamed.len())
                .map(|index| format_ident!("__csp_field_{}", index))
                .collect();
            (quote!(( #(#names),* )), names)
        }
        Fields::Unit => (quote!(), Vec::new()),
    }
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let arms = match &input.data {
        Data::Struct(data) => {
            let (pattern, names) = bind_fields(&data.fields);
            vec![quote!(#ident #pattern => { #((&::csp::__private::Probe(#names)).probe_ends(__csp_ends);)* })]
        }
        Data::Enum(data) => data
            .variants
            .iter()
            .map(|variant| {
                let name = &variant.ident;
                let (pattern, names) = bind_fields(&variant.fields);
                quote!(#ident::#name #pattern => { #((&::csp::__private::Probe(#names)).probe_ends(__csp_ends);)* })
            })
            .collect(),
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                "ChannelEnds cannot be derived for a union",
            ));
        }
    };
    Ok(quote! {
        impl #impl_generics ::csp::ChannelEnds for #ident #type_generics #where_clause {
            #[allow(unused_variables)]
            fn collect_ends(&self, __csp_ends: &mut ::csp::EndSet) {
                #[allow(unused_imports)]
                use ::csp::__private::{ProbeEnds as _, ProbeNoEnds as _};
                #[allow(unreachable_patterns)]
                match self {
                    #(#arms)*
                }
            }
        }
    })
}

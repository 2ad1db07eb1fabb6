//! Generating the `aemp::Message` implementation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::DeriveInput;

use crate::ast::{Body, Input, Message, Style};
use crate::attr::Errors;
use crate::valid;

/// The whole derive: parse, validate, then generate; every problem is
/// reported at once as a compile error.
pub(crate) fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let parsed = Input::from_syn(input, &mut errors);
    if let Some(parsed) = &parsed {
        valid::check(parsed, &mut errors);
    }
    errors.finish()?;
    Ok(parsed.map(|p| expand(&p)).unwrap_or_default())
}

fn expand(input: &Input<'_>) -> TokenStream {
    let krate = input.krate();
    let p = quote!(#krate::__private);
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let messages = input.messages();
    let enum_path = |m: &Message<'_>| match &input.body {
        Body::Enum(_) => {
            let v = m.ident;
            quote!(Self::#v)
        }
        Body::Struct(_) => quote!(Self),
    };

    let tags: Vec<&str> = messages.iter().map(|m| m.tag.as_str()).collect();
    let consts = messages.iter().enumerate().filter(|(_, m)| !m.fields.is_empty()).map(|(i, m)| {
        let name = fields_const(i);
        let fields = m.fields.iter().enumerate().map(|(j, f)| match &f.name {
            Some(n) => quote!(#p::Field::named(#n, #j)),
            None => quote!(#p::Field::unnamed(#j)),
        });
        quote!(const #name: &[#p::Field] = &[#(#fields),*];)
    });

    let tag_arms = messages.iter().map(|m| {
        let path = enum_path(m);
        let tag = &m.tag;
        match m.style {
            Style::Unit => quote!(#path => #tag,),
            Style::Tuple => quote!(#path(..) => #tag,),
            Style::Named => quote!(#path { .. } => #tag,),
        }
    });

    let encode_arms = messages.iter().enumerate().map(|(i, m)| {
        let path = enum_path(m);
        let tag = &m.tag;
        let consts = fields_const(i);
        let bindings: Vec<_> = (0..m.fields.len()).map(|j| format_ident!("__f{}", j)).collect();
        let pattern = match m.style {
            Style::Unit => quote!(#path),
            Style::Tuple => quote!(#path(#(#bindings),*)),
            Style::Named => {
                let members = m.fields.iter().map(|f| &f.member);
                quote!(#path { #(#members: #bindings),* })
            }
        };
        let values = m.fields.iter().zip(&bindings).enumerate().map(|(j, (f, b))| {
            let ty = f.ty;
            quote_spanned!(ty.span()=> #p::encode_field::<#ty>(#tag, &#consts[#j], #b)?)
        });
        quote! {
            #pattern => #p::Ok(#p::Msg::from_array([#p::Value::from(#tag) #(, #values)*])),
        }
    });

    let decode_arms = messages.iter().enumerate().map(|(i, m)| {
        let path = enum_path(m);
        let tag = &m.tag;
        let consts = fields_const(i);
        let values: Vec<_> = m
            .fields
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let ty = f.ty;
                quote_spanned!(ty.span()=> #p::decode_field::<#ty>(#tag, &#consts[#j], &__fields[#j])?)
            })
            .collect();
        let value = match m.style {
            Style::Unit => quote!(#path),
            Style::Tuple => quote!(#path(#(#values),*)),
            Style::Named => {
                let members = m.fields.iter().map(|f| &f.member);
                quote!(#path { #(#members: #values),* })
            }
        };
        let expected = if m.fields.is_empty() { quote!(&[]) } else { quote!(#consts) };
        quote! {
            #tag => {
                #p::check_len(#tag, __fields, #expected)?;
                #p::Ok(#value)
            }
        }
    });

    quote! {
        const _: () = {
            #(#consts)*

            #[automatically_derived]
            impl #impl_generics #krate::Message for #ident #ty_generics #where_clause {
                const TAGS: &'static [&'static str] = &[#(#tags),*];

                fn tag(&self) -> &'static str {
                    match self {
                        #(#tag_arms)*
                    }
                }

                fn to_msg(&self) -> #p::Result<#p::Msg> {
                    match self {
                        #(#encode_arms)*
                    }
                }

                fn from_fields(__tag: &str, __fields: &[#p::Value]) -> #p::Result<Self> {
                    match __tag {
                        #(#decode_arms)*
                        _ => #p::Err(#p::unknown_tag(__tag, <Self as #krate::Message>::TAGS)),
                    }
                }
            }
        };
    }
}

/// The name of the constant describing message `i`'s fields.
fn fields_const(i: usize) -> syn::Ident {
    format_ident!("__AEMP_FIELDS_{}", i)
}

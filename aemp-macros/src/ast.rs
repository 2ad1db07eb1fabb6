//! The derive input in the shape the macro works with: a message type is
//! either an enum of tagged variants or a struct with one tag.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::{DeriveInput, Generics, Ident, Member, Type};

use crate::attr::{self, Errors};
use crate::case::RenameRule;

/// A type that derives `AempMessage`.
pub(crate) struct Input<'a> {
    /// The type's name.
    pub(crate) ident: &'a Ident,
    /// Its generics (rejected by validation unless empty).
    pub(crate) generics: &'a Generics,
    /// Its `#[aemp(...)]` attributes.
    pub(crate) attrs: attr::Container,
    /// Its variants or its one message.
    pub(crate) body: Body<'a>,
}

/// The messages of a type.
pub(crate) enum Body<'a> {
    /// One message per variant.
    Enum(Vec<Message<'a>>),
    /// One message.
    Struct(Message<'a>),
}

/// One message: a variant or a struct.
pub(crate) struct Message<'a> {
    /// The variant's name, or the struct's.
    pub(crate) ident: &'a Ident,
    /// The tag on the wire.
    pub(crate) tag: String,
    /// What the tag came from, for error spans: the `rename`/`tag` setting
    /// or the identifier.
    pub(crate) tag_tokens: TokenStream,
    /// Unit, tuple or named fields.
    pub(crate) style: Style,
    /// The fields in declaration order.
    pub(crate) fields: Vec<Field<'a>>,
}

/// How fields are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// No fields.
    Unit,
    /// `(A, B)`.
    Tuple,
    /// `{ a: A, b: B }`.
    Named,
}

/// One field.
pub(crate) struct Field<'a> {
    /// How to access it (`name` or index).
    pub(crate) member: Member,
    /// The name as shown in errors (without `r#`), for named fields.
    pub(crate) name: Option<String>,
    /// Its type.
    pub(crate) ty: &'a Type,
}

impl<'a> Input<'a> {
    /// Reads the derive input, recording every problem found on the way;
    /// `None` when the input cannot be a message at all (a union).
    pub(crate) fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Input<'a>> {
        if let syn::Data::Union(u) = &input.data {
            errors.spanned(
                u.union_token,
                "`AempMessage` cannot be derived for a union; use an enum (one tag per variant) or a struct",
            );
            return None;
        }
        let is_enum = matches!(input.data, syn::Data::Enum(_));
        let attrs = attr::Container::parse(&input.attrs, is_enum, errors);
        let body = match &input.data {
            syn::Data::Enum(e) => {
                let rule = attrs.rename_all.as_ref().map_or(RenameRule::Snake, |s| s.value);
                let variants = e
                    .variants
                    .iter()
                    .map(|v| {
                        let vattrs = attr::Variant::parse(&v.attrs, errors);
                        let (tag, tag_tokens) = match &vattrs.rename {
                            Some(s) => (s.value.clone(), s.tokens()),
                            None => (rule.apply(&v.ident.unraw().to_string()), v.ident.to_token_stream()),
                        };
                        Message::new(&v.ident, tag, tag_tokens, &v.fields, errors)
                    })
                    .collect();
                Body::Enum(variants)
            }
            syn::Data::Struct(s) => {
                let named = attrs.tag.as_ref().or(attrs.rename.as_ref());
                let (tag, tag_tokens) = match named {
                    Some(s) => (s.value.clone(), s.tokens()),
                    None => (
                        RenameRule::Snake.apply(&input.ident.unraw().to_string()),
                        input.ident.to_token_stream(),
                    ),
                };
                Body::Struct(Message::new(&input.ident, tag, tag_tokens, &s.fields, errors))
            }
            syn::Data::Union(_) => return None,
        };
        Some(Input { ident: &input.ident, generics: &input.generics, attrs, body })
    }

    /// The messages, in declaration order.
    pub(crate) fn messages(&self) -> &[Message<'a>] {
        match &self.body {
            Body::Enum(v) => v,
            Body::Struct(m) => std::slice::from_ref(m),
        }
    }

    /// The path of the aemp crate in generated code.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.attrs.krate {
            Some(s) => s.value.to_token_stream(),
            None => quote!(::aemp),
        }
    }
}

impl<'a> Message<'a> {
    fn new(
        ident: &'a Ident,
        tag: String,
        tag_tokens: TokenStream,
        fields: &'a syn::Fields,
        errors: &mut Errors,
    ) -> Message<'a> {
        let style = match fields {
            syn::Fields::Unit => Style::Unit,
            syn::Fields::Unnamed(_) => Style::Tuple,
            syn::Fields::Named(_) => Style::Named,
        };
        let fields = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                attr::reject_on_field(&f.attrs, errors);
                let member = match &f.ident {
                    Some(id) => Member::Named(id.clone()),
                    None => Member::Unnamed(syn::Index { index: i as u32, span: Span::call_site() }),
                };
                Field { member, name: f.ident.as_ref().map(|id| id.unraw().to_string()), ty: &f.ty }
            })
            .collect();
        Message { ident, tag, tag_tokens, style, fields }
    }
}
